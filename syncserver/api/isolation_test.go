package api_test

import (
	"context"
	"sort"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"
)

// canary marks everything that belongs to store B. No response to a member of
// store A may contain it.
const canary = "canaryb"

// exempt are the procedures the isolation test does not call, each with why.
var exempt = map[string]string{
	"/leadify.v1.AuthService/Login":            "public; takes credentials, returns only the caller's own session",
	"/leadify.v1.AuthService/AcceptInvitation": "public; needs an invitation token, which is a bearer secret of its own",
	"/leadify.v1.AuthService/Logout":           "ends the caller's own session; takes no ids",
	"/leadify.v1.AuthService/ChangePassword":   "changes the caller's own password; takes no ids",
}

// isolationCase calls one procedure as a member of store A with store B's ids.
// wantDenied: the call must fail with PermissionDenied or NotFound; otherwise it
// may succeed but its response is scanned for B's canaries.
type isolationCase struct {
	wantDenied bool
	call       func(ctx context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error)
	// stream, for streaming procedures, reads what the stream sends within a
	// short while and returns every message (or the error).
	stream func(ctx context.Context, as *servertest.Clients, b *fixtureB) ([]proto.Message, error)
}

type fixtureB struct {
	*servertest.Tenant
	env *servertest.Env
	// Leads are store B's leads, named with the canary.
	Leads []uuid.UUID
}

// canarySeeders add more of store B's data before the calls; each capability
// registers its own in an init function beside its cases.
var canarySeeders []func(t *testing.T, b *fixtureB)

// addIsolationCases registers a capability's cases; every procedure needs one
// (or a named exemption), or TestEveryProcedureHasAnIsolationCase fails.
func addIsolationCases(cases map[string]isolationCase) {
	for p, c := range cases {
		if _, dup := isolationCases[p]; dup {
			panic("two isolation cases for " + p)
		}
		isolationCases[p] = c
	}
}

func unary[Req, Resp any](fn func(context.Context, *connect.Request[Req]) (*connect.Response[Resp], error), msg *Req) (proto.Message, error) {
	resp, err := fn(context.Background(), connect.NewRequest(msg))
	if err != nil {
		return nil, err
	}
	return any(resp.Msg).(proto.Message), nil
}

var isolationCases = map[string]isolationCase{}

func init() { addIsolationCases(accountsCases) }

var accountsCases = map[string]isolationCase{
	"/leadify.v1.AuthService/Me": {call: func(_ context.Context, as *servertest.Clients, _ *fixtureB) (proto.Message, error) {
		return unary(as.Auth.Me, &leadifyv1.MeRequest{})
	}},
	"/leadify.v1.AccountsService/CreateSeller": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, _ *fixtureB) (proto.Message, error) {
		return unary(as.Accounts.CreateSeller, &leadifyv1.CreateSellerRequest{Name: "x", OwnerEmail: "x@x.ma", OwnerPassword: "long enough password"})
	}},
	"/leadify.v1.AccountsService/ListSellers": {call: func(_ context.Context, as *servertest.Clients, _ *fixtureB) (proto.Message, error) {
		return unary(as.Accounts.ListSellers, &leadifyv1.ListSellersRequest{})
	}},
	"/leadify.v1.AccountsService/CreateStore": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Accounts.CreateStore, &leadifyv1.CreateStoreRequest{SellerId: b.SellerID.String(), Settings: &leadifyv1.StoreSettings{Name: "intruder"}})
	}},
	"/leadify.v1.AccountsService/ListStores": {call: func(_ context.Context, as *servertest.Clients, _ *fixtureB) (proto.Message, error) {
		return unary(as.Accounts.ListStores, &leadifyv1.ListStoresRequest{})
	}},
	"/leadify.v1.AccountsService/GetStore": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Accounts.GetStore, &leadifyv1.GetStoreRequest{StoreId: b.StoreID.String()})
	}},
	"/leadify.v1.AccountsService/UpdateStore": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Accounts.UpdateStore, &leadifyv1.UpdateStoreRequest{StoreId: b.StoreID.String(),
			Settings: &leadifyv1.StoreSettings{Name: "pwned"}, UpdateMask: []string{"name"}})
	}},
	"/leadify.v1.AccountsService/InviteMember": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Accounts.InviteMember, &leadifyv1.InviteMemberRequest{StoreId: b.StoreID.String(), Email: "spy@x.ma", Role: leadifyv1.Role_ROLE_AGENT})
	}},
	"/leadify.v1.AccountsService/ListMembers": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Accounts.ListMembers, &leadifyv1.ListMembersRequest{StoreId: b.StoreID.String()})
	}},
	"/leadify.v1.AccountsService/SetMemberPermissions": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Accounts.SetMemberPermissions, &leadifyv1.SetMemberPermissionsRequest{StoreId: b.StoreID.String(),
			UserId: b.Agent.UserID.String(), Revoked: []string{"store.view"}})
	}},
	"/leadify.v1.AccountsService/RemoveMember": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Accounts.RemoveMember, &leadifyv1.RemoveMemberRequest{StoreId: b.StoreID.String(), UserId: b.Agent.UserID.String()})
	}},
	"/leadify.v1.AccountsService/ListAuditLog": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Accounts.ListAuditLog, &leadifyv1.ListAuditLogRequest{StoreId: b.StoreID.String()})
	}},
}

// allProcedures lists every RPC and stream of every leadify.v1 service, from
// the generated descriptors registered by the generated package.
func allProcedures() []string {
	var out []string
	protoregistry.GlobalFiles.RangeFilesByPackage("leadify.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := 0; i < fd.Services().Len(); i++ {
			svc := fd.Services().Get(i)
			for j := 0; j < svc.Methods().Len(); j++ {
				out = append(out, "/"+string(svc.FullName())+"/"+string(svc.Methods().Get(j).Name()))
			}
		}
		return true
	})
	sort.Strings(out)
	return out
}

func TestEveryProcedureHasAnIsolationCase(t *testing.T) {
	t.Parallel()
	procs := allProcedures()
	require.NotEmpty(t, procs)
	for _, p := range procs {
		_, hasCase := isolationCases[p]
		_, isExempt := exempt[p]
		require.True(t, hasCase != isExempt, "%s needs exactly one of an isolation case or a named exemption", p)
	}
	require.Len(t, exempt, 4, "exemptions are a short named list; adding one needs a reason here")
	for p := range isolationCases {
		require.Contains(t, procs, p, "case for a procedure that no longer exists")
	}
}

func TestStoreIsolationCanaries(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	admin := env.Admin()
	a := env.NewTenant(admin, "storea")
	b := &fixtureB{Tenant: env.NewTenant(admin, canary), env: env}
	ctx := context.Background()
	b.Leads = env.SeedLeads(b.StoreID, 5, "CanaryB customer")
	for _, seed := range canarySeeders {
		seed(t, b)
	}
	// More canaries in B: branding, an invitation, audit entries.
	_, err := b.Seller.Accounts.UpdateStore(ctx, connect.NewRequest(&leadifyv1.UpdateStoreRequest{StoreId: b.StoreID.String(),
		Settings:   &leadifyv1.StoreSettings{Name: "CanaryB Boutique", Invoice: &leadifyv1.InvoiceDetails{LegalName: "canaryb sarl"}},
		UpdateMask: []string{"name", "invoice"}}))
	require.NoError(t, err)
	_, err = b.Seller.Accounts.InviteMember(ctx, connect.NewRequest(&leadifyv1.InviteMemberRequest{StoreId: b.StoreID.String(),
		Email: "pending@canaryb.test", Role: leadifyv1.Role_ROLE_AGENT}))
	require.NoError(t, err)

	for _, who := range []struct {
		name string
		c    *servertest.Clients
	}{{"seller of A", a.Seller}, {"agent of A", a.Agent}} {
		for _, proc := range allProcedures() {
			tc, ok := isolationCases[proc]
			if !ok {
				continue
			}
			var msgs []proto.Message
			var err error
			if tc.stream != nil {
				msgs, err = tc.stream(ctx, who.c, b)
			} else {
				var resp proto.Message
				resp, err = tc.call(ctx, who.c, b)
				if resp != nil {
					msgs = append(msgs, resp)
				}
			}
			if tc.wantDenied {
				code := connect.CodeOf(err)
				require.Truef(t, code == connect.CodePermissionDenied || code == connect.CodeNotFound,
					"%s calling %s with store B's ids: got %v, want PermissionDenied or NotFound", who.name, proc, err)
			} else {
				require.NoError(t, err, "%s calling %s", who.name, proc)
			}
			if err != nil {
				require.NotContains(t, strings.ToLower(err.Error()), canary, "%s: error leaks store B", proc)
			}
			for _, resp := range msgs {
				js, jerr := protojson.Marshal(resp)
				require.NoError(t, jerr)
				require.NotContains(t, strings.ToLower(string(js)), canary, "%s calling %s: response leaks store B", who.name, proc)
				require.NotContains(t, string(js), b.StoreID.String(), "%s calling %s: response names store B", who.name, proc)
			}
		}
	}

	// B is untouched by all of the above.
	got, err := b.Seller.Accounts.GetStore(ctx, connect.NewRequest(&leadifyv1.GetStoreRequest{StoreId: b.StoreID.String()}))
	require.NoError(t, err)
	require.Equal(t, "CanaryB Boutique", got.Msg.Store.Settings.Name)
	members, err := b.Seller.Accounts.ListMembers(ctx, connect.NewRequest(&leadifyv1.ListMembersRequest{StoreId: b.StoreID.String()}))
	require.NoError(t, err)
	require.Len(t, members.Msg.Members, 2)
	for _, m := range members.Msg.Members {
		require.NotContains(t, m.Revoked, "store.view")
	}
}

// Row-level security holds even where a query forgets its store filter.
func TestRowLevelSecurityBacksTheFilters(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	admin := env.Admin()
	a, b := env.NewTenant(admin, "rlsa"), env.NewTenant(admin, "rlsb")
	ctx := context.Background()
	for _, table := range []string{"stores", "store_members", "store_invitations", "audit_log", "domain_events"} {
		var n, foreign int
		col := "store_id"
		if table == "stores" {
			col = "id"
		}
		q := "SELECT count(*), count(*) FILTER (WHERE " + col + " = $1) FROM " + table
		env.InStore(func(tx *postgres.Tx) error {
			return tx.QueryRow(ctx, q, b.StoreID).Scan(&n, &foreign)
		}, a.StoreID)
		require.Zero(t, foreign, "%s: store A's transaction sees store B's rows", table)
		require.NotZero(t, n, "%s: store A's transaction sees its own rows", table)

		var none int
		require.NoError(t, env.DB.App.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE "+col+" IS NOT NULL").Scan(&none))
		require.Zero(t, none, "%s: without a scope nothing is visible", table)
	}
}
