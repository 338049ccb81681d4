package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/syncserver/auth"
	"github.com/leadify/leadify/syncserver/servertest"
)

func tinyPNG(t *testing.T) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	img.Set(1, 1, color.RGBA{R: 200, A: 255})
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	return b.Bytes()
}

func TestOnlyPlatformAdminsCreateSellers(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	admin := env.Admin()
	tn := env.NewTenant(admin, "souk")
	ctx := context.Background()
	req := &leadifyv1.CreateSellerRequest{Name: "Sneaky", OwnerEmail: "s@x.ma", OwnerPassword: "long enough password"}
	for _, c := range []*servertest.Clients{tn.Seller, tn.Agent} {
		_, err := c.Accounts.CreateSeller(ctx, connect.NewRequest(req))
		require.Equal(t, connect.CodePermissionDenied, codeOf(err))
	}
	_, err := admin.Accounts.CreateSeller(ctx, connect.NewRequest(&leadifyv1.CreateSellerRequest{Name: "Dup",
		OwnerEmail: tn.SellerEmail, OwnerPassword: "long enough password"}))
	require.Equal(t, connect.CodeAlreadyExists, codeOf(err), "one account per email")

	sellers, err := tn.Seller.Accounts.ListSellers(ctx, connect.NewRequest(&leadifyv1.ListSellersRequest{}))
	require.NoError(t, err)
	require.Len(t, sellers.Msg.Sellers, 1)
	require.Equal(t, tn.SellerID.String(), sellers.Msg.Sellers[0].Id)
}

func TestStoreSettingsAreValidatedAndAudited(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "argan")
	ctx := context.Background()
	sid := tn.StoreID.String()

	got, err := tn.Seller.Accounts.GetStore(ctx, connect.NewRequest(&leadifyv1.GetStoreRequest{StoreId: sid}))
	require.NoError(t, err)
	s := got.Msg.Store.Settings
	require.Equal(t, "argan store", s.Name)
	require.Equal(t, int32(1440), s.LeadLeaseMinutes, "new stores take the defaults")
	require.Equal(t, "Africa/Casablanca", s.Timezone)
	require.Equal(t, "MAD", s.Currency)

	logo := tinyPNG(t)
	upd, err := tn.Seller.Accounts.UpdateStore(ctx, connect.NewRequest(&leadifyv1.UpdateStoreRequest{StoreId: sid,
		Settings: &leadifyv1.StoreSettings{Name: "Argan Beauty", Branding: &leadifyv1.Branding{Logo: logo, PrimaryColor: "#112233", AccentColor: "#aabbcc"},
			AutoCreateParcels: true, DefaultCarrier: "coliix"},
		UpdateMask: []string{"name", "branding", "auto_create_parcels", "default_carrier"}}))
	require.NoError(t, err)
	s = upd.Msg.Store.Settings
	require.Equal(t, "Argan Beauty", s.Name)
	require.Equal(t, "image/png", s.Branding.LogoMimeType)
	require.Equal(t, logo, s.Branding.Logo)
	require.True(t, s.AutoCreateParcels)
	require.Equal(t, int32(1440), s.LeadLeaseMinutes, "fields outside the mask are kept")

	bad := map[string]*leadifyv1.UpdateStoreRequest{
		"empty name":    {Settings: &leadifyv1.StoreSettings{}, UpdateMask: []string{"name"}},
		"bad colour":    {Settings: &leadifyv1.StoreSettings{Branding: &leadifyv1.Branding{PrimaryColor: "red"}}, UpdateMask: []string{"branding"}},
		"not an image":  {Settings: &leadifyv1.StoreSettings{Branding: &leadifyv1.Branding{Logo: []byte("<svg/>")}}, UpdateMask: []string{"branding"}},
		"huge logo":     {Settings: &leadifyv1.StoreSettings{Branding: &leadifyv1.Branding{Logo: append(tinyPNG(t), make([]byte, 600<<10)...)}}, UpdateMask: []string{"branding"}},
		"carrier":       {Settings: &leadifyv1.StoreSettings{DefaultCarrier: "dhl"}, UpdateMask: []string{"default_carrier"}},
		"lease":         {Settings: &leadifyv1.StoreSettings{LeadLeaseMinutes: 1}, UpdateMask: []string{"lead_lease_minutes"}},
		"timezone":      {Settings: &leadifyv1.StoreSettings{Timezone: "Mars/Olympus"}, UpdateMask: []string{"timezone"}},
		"vat":           {Settings: &leadifyv1.StoreSettings{Invoice: &leadifyv1.InvoiceDetails{VatRateBp: 20000}}, UpdateMask: []string{"invoice"}},
		"ice":           {Settings: &leadifyv1.StoreSettings{Invoice: &leadifyv1.InvoiceDetails{Ice: "123"}}, UpdateMask: []string{"invoice"}},
		"unknown field": {Settings: &leadifyv1.StoreSettings{}, UpdateMask: []string{"owner"}},
		"no mask":       {Settings: &leadifyv1.StoreSettings{Name: "x"}},
	}
	for name, r := range bad {
		r.StoreId = sid
		_, err := tn.Seller.Accounts.UpdateStore(ctx, connect.NewRequest(r))
		require.Equal(t, connect.CodeInvalidArgument, codeOf(err), name)
	}
	after, err := tn.Seller.Accounts.GetStore(ctx, connect.NewRequest(&leadifyv1.GetStoreRequest{StoreId: sid}))
	require.NoError(t, err)
	require.Equal(t, "Argan Beauty", after.Msg.Store.Settings.Name, "refused updates change nothing")

	_, err = tn.Agent.Accounts.UpdateStore(ctx, connect.NewRequest(&leadifyv1.UpdateStoreRequest{StoreId: sid,
		Settings: &leadifyv1.StoreSettings{Name: "Hacked"}, UpdateMask: []string{"name"}}))
	require.Equal(t, connect.CodePermissionDenied, codeOf(err), "agents do not hold store.settings")

	log, err := tn.Seller.Accounts.ListAuditLog(ctx, connect.NewRequest(&leadifyv1.ListAuditLogRequest{StoreId: sid}))
	require.NoError(t, err)
	var actions []string
	for _, e := range log.Msg.Entries {
		actions = append(actions, e.Action)
	}
	require.Equal(t, []string{"store.updated", "member.joined", "member.invited", "store.created"}, actions, "newest first")
	var summary map[string]map[string]any
	require.NoError(t, json.Unmarshal([]byte(log.Msg.Entries[0].SummaryJson), &summary))
	require.Equal(t, "argan store", summary["name"]["old"])
	require.Equal(t, "Argan Beauty", summary["name"]["new"])
	require.Equal(t, tn.SellerEmail, log.Msg.Entries[0].ActorEmail)
}

func TestAuditLogPages(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "pages")
	ctx := context.Background()
	for i := range 7 {
		_, err := tn.Seller.Accounts.UpdateStore(ctx, connect.NewRequest(&leadifyv1.UpdateStoreRequest{StoreId: tn.StoreID.String(),
			Settings: &leadifyv1.StoreSettings{LeadLeaseMinutes: int32(60 + i)}, UpdateMask: []string{"lead_lease_minutes"}}))
		require.NoError(t, err)
	}
	seen := map[string]bool{}
	token := ""
	pages := 0
	for {
		resp, err := tn.Seller.Accounts.ListAuditLog(ctx, connect.NewRequest(&leadifyv1.ListAuditLogRequest{StoreId: tn.StoreID.String(), PageSize: 3, PageToken: token}))
		require.NoError(t, err)
		pages++
		for _, e := range resp.Msg.Entries {
			require.False(t, seen[e.Id], "no entry twice")
			seen[e.Id] = true
		}
		if token = resp.Msg.NextPageToken; token == "" {
			break
		}
	}
	require.Len(t, seen, 10, "7 updates + created, invited, joined")
	require.Equal(t, 4, pages)

	_, err := tn.Seller.Accounts.ListAuditLog(ctx, connect.NewRequest(&leadifyv1.ListAuditLogRequest{StoreId: tn.StoreID.String(), PageToken: "forged"}))
	require.Equal(t, connect.CodeInvalidArgument, codeOf(err))
	_, err = tn.Agent.Accounts.ListAuditLog(ctx, connect.NewRequest(&leadifyv1.ListAuditLogRequest{StoreId: tn.StoreID.String()}))
	require.Equal(t, connect.CodePermissionDenied, codeOf(err))
}

func TestMembersInvitationsAndPermissions(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	admin := env.Admin()
	tn := env.NewTenant(admin, "members")
	ctx := context.Background()
	sid := tn.StoreID.String()

	me, err := tn.Agent.Auth.Me(ctx, connect.NewRequest(&leadifyv1.MeRequest{}))
	require.NoError(t, err)
	require.Len(t, me.Msg.Memberships, 1)
	require.Equal(t, leadifyv1.Role_ROLE_AGENT, me.Msg.Memberships[0].Role)
	require.Contains(t, me.Msg.Memberships[0].Permissions, string(auth.LeadsClaim))
	require.NotContains(t, me.Msg.Memberships[0].Permissions, string(auth.CarriersManage), "agents never manage carrier secrets")

	// Narrow the agent: no more confirming; widen: may export.
	set, err := tn.Seller.Accounts.SetMemberPermissions(ctx, connect.NewRequest(&leadifyv1.SetMemberPermissionsRequest{StoreId: sid,
		UserId: tn.Agent.UserID.String(), Granted: []string{"leads.export"}, Revoked: []string{"leads.confirm"}}))
	require.NoError(t, err)
	require.Contains(t, set.Msg.Member.Permissions, "leads.export")
	require.NotContains(t, set.Msg.Member.Permissions, "leads.confirm")
	me, err = tn.Agent.Auth.Me(ctx, connect.NewRequest(&leadifyv1.MeRequest{}))
	require.NoError(t, err)
	require.Contains(t, me.Msg.Memberships[0].Permissions, "leads.export", "effective at the next request")
	require.NotContains(t, me.Msg.Memberships[0].Permissions, "leads.confirm")

	for name, r := range map[string]*leadifyv1.SetMemberPermissionsRequest{
		"unknown":  {UserId: tn.Agent.UserID.String(), Granted: []string{"leads.fly"}},
		"both":     {UserId: tn.Agent.UserID.String(), Granted: []string{"leads.export"}, Revoked: []string{"leads.export"}},
		"bad user": {UserId: "not-a-uuid"},
	} {
		r.StoreId = sid
		_, err := tn.Seller.Accounts.SetMemberPermissions(ctx, connect.NewRequest(r))
		require.Equal(t, connect.CodeInvalidArgument, codeOf(err), name)
	}
	_, err = tn.Seller.Accounts.SetMemberPermissions(ctx, connect.NewRequest(&leadifyv1.SetMemberPermissionsRequest{StoreId: sid,
		UserId: tn.Seller.UserID.String(), Revoked: []string{"store.view"}}))
	require.Equal(t, connect.CodeFailedPrecondition, codeOf(err), "nobody edits their own permissions")
	_, err = tn.Agent.Accounts.InviteMember(ctx, connect.NewRequest(&leadifyv1.InviteMemberRequest{StoreId: sid, Email: "x@y.ma", Role: leadifyv1.Role_ROLE_AGENT}))
	require.Equal(t, connect.CodePermissionDenied, codeOf(err))
	_, err = tn.Seller.Accounts.InviteMember(ctx, connect.NewRequest(&leadifyv1.InviteMemberRequest{StoreId: sid, Email: "x@y.ma", Role: leadifyv1.Role_ROLE_ADMIN}))
	require.Equal(t, connect.CodePermissionDenied, codeOf(err), "only platform admins make admins")

	// An invitation is good once.
	inv, err := tn.Seller.Accounts.InviteMember(ctx, connect.NewRequest(&leadifyv1.InviteMemberRequest{StoreId: sid, Email: "new@agent.ma", Role: leadifyv1.Role_ROLE_AGENT}))
	require.NoError(t, err)
	anon := env.ClientsFor("")
	accept := &leadifyv1.AcceptInvitationRequest{Token: inv.Msg.Token, FullName: "New Agent", Password: servertest.Password}
	_, err = anon.Auth.AcceptInvitation(ctx, connect.NewRequest(accept))
	require.NoError(t, err)
	_, err = anon.Auth.AcceptInvitation(ctx, connect.NewRequest(accept))
	require.Equal(t, connect.CodeFailedPrecondition, codeOf(err))
	_, err = anon.Auth.AcceptInvitation(ctx, connect.NewRequest(&leadifyv1.AcceptInvitationRequest{Token: "lfy_nope"}))
	require.Equal(t, connect.CodeNotFound, codeOf(err))

	// An existing account joins a second store by proving its password.
	other := env.NewTenant(admin, "second")
	inv2, err := other.Seller.Accounts.InviteMember(ctx, connect.NewRequest(&leadifyv1.InviteMemberRequest{StoreId: other.StoreID.String(),
		Email: tn.AgentEmail, Role: leadifyv1.Role_ROLE_AGENT}))
	require.NoError(t, err)
	_, err = anon.Auth.AcceptInvitation(ctx, connect.NewRequest(&leadifyv1.AcceptInvitationRequest{Token: inv2.Msg.Token, Password: "wrong password!"}))
	require.Equal(t, connect.CodeUnauthenticated, codeOf(err))
	_, err = anon.Auth.AcceptInvitation(ctx, connect.NewRequest(&leadifyv1.AcceptInvitationRequest{Token: inv2.Msg.Token, Password: servertest.Password}))
	require.NoError(t, err)
	stores, err := tn.Agent.Accounts.ListStores(ctx, connect.NewRequest(&leadifyv1.ListStoresRequest{}))
	require.NoError(t, err)
	require.Len(t, stores.Msg.Stores, 2)

	members, err := tn.Seller.Accounts.ListMembers(ctx, connect.NewRequest(&leadifyv1.ListMembersRequest{StoreId: sid}))
	require.NoError(t, err)
	require.Len(t, members.Msg.Members, 3)
	_, err = tn.Agent.Accounts.ListMembers(ctx, connect.NewRequest(&leadifyv1.ListMembersRequest{StoreId: sid}))
	require.Equal(t, connect.CodePermissionDenied, codeOf(err), "agents do not see other agents")

	_, err = tn.Seller.Accounts.RemoveMember(ctx, connect.NewRequest(&leadifyv1.RemoveMemberRequest{StoreId: sid, UserId: tn.Seller.UserID.String()}))
	require.Equal(t, connect.CodeFailedPrecondition, codeOf(err), "the last seller stays")
	_, err = tn.Seller.Accounts.RemoveMember(ctx, connect.NewRequest(&leadifyv1.RemoveMemberRequest{StoreId: sid, UserId: tn.Agent.UserID.String()}))
	require.NoError(t, err)
	_, err = tn.Agent.Accounts.GetStore(ctx, connect.NewRequest(&leadifyv1.GetStoreRequest{StoreId: sid}))
	require.Equal(t, connect.CodeNotFound, codeOf(err), "a removed member loses the store at once")
	stores, err = tn.Agent.Accounts.ListStores(ctx, connect.NewRequest(&leadifyv1.ListStoresRequest{}))
	require.NoError(t, err)
	require.Len(t, stores.Msg.Stores, 1)
}

func TestPlatformAdminSeesEveryStore(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	admin := env.Admin()
	a, b := env.NewTenant(admin, "one"), env.NewTenant(admin, "two")
	stores, err := admin.Accounts.ListStores(context.Background(), connect.NewRequest(&leadifyv1.ListStoresRequest{}))
	require.NoError(t, err)
	ids := []string{}
	for _, s := range stores.Msg.Stores {
		ids = append(ids, s.Id)
	}
	require.ElementsMatch(t, []string{a.StoreID.String(), b.StoreID.String()}, ids)
}
