package api

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/proto/gen/leadify/v1/leadifyv1connect"
	"github.com/leadify/leadify/syncserver/audit"
	"github.com/leadify/leadify/syncserver/auth"
	"github.com/leadify/leadify/syncserver/events"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/postgres/queries"
)

// invitationTTL is how long an invitation token stays valid.
const invitationTTL = 7 * 24 * time.Hour

type accountsHandler struct {
	pool   *pgxpool.Pool
	events *events.Bus
	log    *slog.Logger
}

var _ leadifyv1connect.AccountsServiceHandler = (*accountsHandler)(nil)

// do runs fn in a transaction with the actor's scope (widened by extra stores).
func (h *accountsHandler) do(ctx context.Context, a *auth.Actor, fn func(*postgres.Tx) error, extra ...uuid.UUID) error {
	return postgres.InTx(ctx, h.pool, a.Scope().With(extra...), fn)
}

func (h *accountsHandler) CreateSeller(ctx context.Context, req *connect.Request[leadifyv1.CreateSellerRequest]) (*connect.Response[leadifyv1.CreateSellerResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	if !a.PlatformAdmin {
		return nil, toConnect(ctx, h.log, auth.ErrForbidden)
	}
	m := req.Msg
	name := strings.TrimSpace(m.Name)
	if name == "" || len(name) > 100 {
		return nil, toConnect(ctx, h.log, invalidf("name: must be 1 to 100 characters"))
	}
	if !strings.Contains(m.OwnerEmail, "@") {
		return nil, toConnect(ctx, h.log, invalidf("owner_email: %q is not an email address", m.OwnerEmail))
	}
	hash, err := auth.HashPassword(m.OwnerPassword)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	resp := &leadifyv1.CreateSellerResponse{}
	err = h.do(ctx, a, func(tx *postgres.Tx) error {
		owner, err := tx.Q.CreateUser(ctx, tx, queries.CreateUserParams{ID: uuid.Must(uuid.NewV7()),
			Email: strings.TrimSpace(m.OwnerEmail), FullName: strings.TrimSpace(m.OwnerFullName), PasswordHash: hash})
		if err != nil {
			return postgres.Translate(err)
		}
		seller, err := tx.Q.CreateSeller(ctx, tx, queries.CreateSellerParams{ID: uuid.Must(uuid.NewV7()), Name: name, OwnerUserID: owner.ID})
		if err != nil {
			return err
		}
		resp.Seller, resp.Owner = sellerPB(seller), userPB(owner)
		return audit.Write(ctx, tx, audit.Entry{Actor: a.UserID, Action: "seller.created", TargetType: "seller",
			TargetID: seller.ID.String(), Summary: map[string]any{"name": name, "owner": owner.Email}})
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	return connect.NewResponse(resp), nil
}

func (h *accountsHandler) ListSellers(ctx context.Context, _ *connect.Request[leadifyv1.ListSellersRequest]) (*connect.Response[leadifyv1.ListSellersResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	q := queries.New()
	var rows []queries.Seller
	if a.PlatformAdmin {
		rows, err = q.ListAllSellers(ctx, h.pool)
	} else {
		rows, err = q.ListSellersOwnedBy(ctx, h.pool, a.UserID)
	}
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	resp := &leadifyv1.ListSellersResponse{}
	for _, s := range rows {
		resp.Sellers = append(resp.Sellers, sellerPB(s))
	}
	return connect.NewResponse(resp), nil
}

func (h *accountsHandler) CreateStore(ctx context.Context, req *connect.Request[leadifyv1.CreateStoreRequest]) (*connect.Response[leadifyv1.CreateStoreResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	sellerID, err := parseID("seller_id", req.Msg.SellerId)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	seller, err := queries.New().GetSeller(ctx, h.pool, sellerID)
	if err != nil || !a.OwnsSeller(seller.OwnerUserID) {
		return nil, toConnect(ctx, h.log, postgres.ErrNotFound)
	}
	settings := mergeDefaults(req.Msg.Settings)
	if err := validateSettings(settings); err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	params, err := createStoreParams(settings)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	params.ID, params.SellerID = uuid.Must(uuid.NewV7()), sellerID
	resp := &leadifyv1.CreateStoreResponse{}
	err = h.do(ctx, a, func(tx *postgres.Tx) error {
		row, err := tx.Q.CreateStore(ctx, tx, params)
		if err != nil {
			return err
		}
		if _, err := tx.Q.UpsertMember(ctx, tx, queries.UpsertMemberParams{StoreID: row.ID, UserID: seller.OwnerUserID,
			Role: string(auth.RoleSeller)}); err != nil {
			return err
		}
		if err := h.events.Publish(ctx, tx, events.Event{Store: row.ID, Kind: events.StoreCreated, AggregateType: "store",
			AggregateID: row.ID, Actor: a.UserID, Payload: map[string]any{"seller_id": sellerID}}); err != nil {
			return err
		}
		if resp.Store, err = storePB(row); err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: a.UserID, Store: row.ID, Action: "store.created", TargetType: "store",
			TargetID: row.ID.String(), Summary: map[string]any{"name": row.Name, "seller_id": sellerID}})
	}, params.ID)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	return connect.NewResponse(resp), nil
}

// mergeDefaults fills a new store's unset settings from the defaults.
func mergeDefaults(in *leadifyv1.StoreSettings) *leadifyv1.StoreSettings {
	out := defaultSettings()
	if in == nil {
		return out
	}
	in = proto.Clone(in).(*leadifyv1.StoreSettings)
	out.Name = strings.TrimSpace(in.Name)
	if in.Branding != nil {
		if in.Branding.PrimaryColor == "" {
			in.Branding.PrimaryColor = out.Branding.PrimaryColor
		}
		if in.Branding.AccentColor == "" {
			in.Branding.AccentColor = out.Branding.AccentColor
		}
		out.Branding = in.Branding
	}
	out.DefaultCarrier, out.AutoCreateParcels = in.DefaultCarrier, in.AutoCreateParcels
	if in.LeadLeaseMinutes != 0 {
		out.LeadLeaseMinutes = in.LeadLeaseMinutes
	}
	if in.Invoice != nil {
		out.Invoice = in.Invoice
	}
	if in.Timezone != "" {
		out.Timezone = in.Timezone
	}
	return out
}

func (h *accountsHandler) ListStores(ctx context.Context, _ *connect.Request[leadifyv1.ListStoresRequest]) (*connect.Response[leadifyv1.ListStoresResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	resp := &leadifyv1.ListStoresResponse{}
	err = h.do(ctx, a, func(tx *postgres.Tx) error {
		var rows []queries.Store
		var err error
		if a.PlatformAdmin {
			rows, err = tx.Q.ListAllStores(ctx, tx)
		} else {
			rows, err = tx.Q.ListStoresByID(ctx, tx, a.Scope().StoreIDs)
		}
		if err != nil {
			return err
		}
		resp.Stores, err = storesPB(rows)
		return err
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	return connect.NewResponse(resp), nil
}

// storeFor parses a store id and checks the actor's permission on it.
func storeFor(a *auth.Actor, id string, p auth.Permission) (uuid.UUID, error) {
	storeID, err := parseID("store_id", id)
	if err != nil {
		return uuid.Nil, err
	}
	return storeID, a.Require(storeID, p)
}

func (h *accountsHandler) GetStore(ctx context.Context, req *connect.Request[leadifyv1.GetStoreRequest]) (*connect.Response[leadifyv1.GetStoreResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	storeID, err := storeFor(a, req.Msg.StoreId, auth.StoreView)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	resp := &leadifyv1.GetStoreResponse{}
	err = h.do(ctx, a, func(tx *postgres.Tx) error {
		row, err := tx.Q.GetStore(ctx, tx, storeID)
		if err != nil {
			return postgres.Translate(err)
		}
		resp.Store, err = storePB(row)
		return err
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	return connect.NewResponse(resp), nil
}

func (h *accountsHandler) UpdateStore(ctx context.Context, req *connect.Request[leadifyv1.UpdateStoreRequest]) (*connect.Response[leadifyv1.UpdateStoreResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	storeID, err := storeFor(a, req.Msg.StoreId, auth.StoreSettings)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	if len(req.Msg.UpdateMask) == 0 {
		return nil, toConnect(ctx, h.log, invalidf("update_mask: name at least one field"))
	}
	resp := &leadifyv1.UpdateStoreResponse{}
	err = h.do(ctx, a, func(tx *postgres.Tx) error {
		row, err := tx.Q.GetStoreForUpdate(ctx, tx, storeID)
		if err != nil {
			return postgres.Translate(err)
		}
		cur, err := storePB(row)
		if err != nil {
			return err
		}
		settings := proto.Clone(cur.Settings).(*leadifyv1.StoreSettings)
		if err := applySettings(settings, req.Msg.Settings, req.Msg.UpdateMask); err != nil {
			return err
		}
		inv, err := protojson.Marshal(settings.Invoice)
		if err != nil {
			return err
		}
		b := settings.Branding
		row, err = tx.Q.UpdateStore(ctx, tx, queries.UpdateStoreParams{ID: storeID, Name: settings.Name, Logo: b.Logo,
			LogoMimeType: b.LogoMimeType, PrimaryColor: b.PrimaryColor, AccentColor: b.AccentColor,
			DefaultCarrier: settings.DefaultCarrier, AutoCreateParcels: settings.AutoCreateParcels,
			LeadLeaseMinutes: settings.LeadLeaseMinutes, Invoice: inv, Timezone: settings.Timezone})
		if err != nil {
			return err
		}
		if resp.Store, err = storePB(row); err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: a.UserID, Store: storeID, Action: "store.updated", TargetType: "store",
			TargetID: storeID.String(), Summary: settingsDiff(cur.Settings, settings, req.Msg.UpdateMask)})
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	return connect.NewResponse(resp), nil
}

// settingsDiff summarises changed settings as {field: {old, new}}; the logo is
// summarised by size, not content.
func settingsDiff(before, after *leadifyv1.StoreSettings, mask []string) map[string]any {
	summarise := func(s *leadifyv1.StoreSettings) map[string]any {
		b := proto.Clone(s.Branding).(*leadifyv1.Branding)
		logo := len(b.Logo)
		b.Logo = nil
		return map[string]any{"name": s.Name, "branding": map[string]any{"logo_bytes": logo, "primary_color": b.PrimaryColor,
			"accent_color": b.AccentColor}, "default_carrier": s.DefaultCarrier, "auto_create_parcels": s.AutoCreateParcels,
			"lead_lease_minutes": s.LeadLeaseMinutes, "invoice": s.Invoice, "timezone": s.Timezone}
	}
	old, cur := summarise(before), summarise(after)
	out := map[string]any{}
	for _, f := range mask {
		if fmt.Sprint(old[f]) != fmt.Sprint(cur[f]) {
			out[f] = map[string]any{"old": old[f], "new": cur[f]}
		}
	}
	return out
}

func (h *accountsHandler) InviteMember(ctx context.Context, req *connect.Request[leadifyv1.InviteMemberRequest]) (*connect.Response[leadifyv1.InviteMemberResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	storeID, err := storeFor(a, req.Msg.StoreId, auth.StoreMembers)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	role, err := roleFromPB(req.Msg.Role)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	if role == auth.RoleAdmin && !a.PlatformAdmin {
		return nil, toConnect(ctx, h.log, auth.ErrForbidden)
	}
	email := strings.TrimSpace(req.Msg.Email)
	if !strings.Contains(email, "@") || len(email) > 200 {
		return nil, toConnect(ctx, h.log, invalidf("email: %q is not an email address", email))
	}
	token, hash := auth.NewToken()
	inv := &leadifyv1.Invitation{Id: uuid.Must(uuid.NewV7()).String(), StoreId: storeID.String(), Email: email,
		Role: req.Msg.Role, ExpiresAt: timestamppb.New(time.Now().Add(invitationTTL).Truncate(time.Microsecond))}
	err = h.do(ctx, a, func(tx *postgres.Tx) error {
		if err := tx.Q.CreateInvitation(ctx, tx, queries.CreateInvitationParams{ID: uuid.MustParse(inv.Id), StoreID: storeID,
			Email: email, Role: string(role), TokenHash: hash, InvitedBy: a.UserID, ExpiresAt: inv.ExpiresAt.AsTime()}); err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: a.UserID, Store: storeID, Action: "member.invited", TargetType: "invitation",
			TargetID: inv.Id, Summary: map[string]any{"email": email, "role": role}})
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	return connect.NewResponse(&leadifyv1.InviteMemberResponse{Invitation: inv, Token: token}), nil
}

func (h *accountsHandler) ListMembers(ctx context.Context, req *connect.Request[leadifyv1.ListMembersRequest]) (*connect.Response[leadifyv1.ListMembersResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	storeID, err := storeFor(a, req.Msg.StoreId, auth.StoreMembers)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	resp := &leadifyv1.ListMembersResponse{}
	err = h.do(ctx, a, func(tx *postgres.Tx) error {
		rows, err := tx.Q.ListMembers(ctx, tx, storeID)
		for _, r := range rows {
			resp.Members = append(resp.Members, memberPB(queries.GetMemberRow(r)))
		}
		return err
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	return connect.NewResponse(resp), nil
}

func (h *accountsHandler) SetMemberPermissions(ctx context.Context, req *connect.Request[leadifyv1.SetMemberPermissionsRequest]) (*connect.Response[leadifyv1.SetMemberPermissionsResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	storeID, err := storeFor(a, m.StoreId, auth.StoreMembers)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	userID, err := parseID("user_id", m.UserId)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	if userID == a.UserID && !a.PlatformAdmin {
		return nil, toConnect(ctx, h.log, failedf("you cannot change your own permissions"))
	}
	granted, err := auth.ParsePermissions(m.Granted)
	if err != nil {
		return nil, toConnect(ctx, h.log, invalidf("granted: %v", err))
	}
	revoked, err := auth.ParsePermissions(m.Revoked)
	if err != nil {
		return nil, toConnect(ctx, h.log, invalidf("revoked: %v", err))
	}
	for _, p := range granted {
		if slices.Contains(revoked, p) {
			return nil, toConnect(ctx, h.log, invalidf("%s is both granted and revoked", p))
		}
		if !a.Can(storeID, p) {
			return nil, toConnect(ctx, h.log, failedf("you cannot grant %s, which you do not hold", p))
		}
	}
	resp := &leadifyv1.SetMemberPermissionsResponse{}
	err = h.do(ctx, a, func(tx *postgres.Tx) error {
		before, err := tx.Q.GetMember(ctx, tx, queries.GetMemberParams{StoreID: storeID, UserID: userID})
		if err != nil {
			return postgres.Translate(err)
		}
		if _, err := tx.Q.SetMemberPermissions(ctx, tx, queries.SetMemberPermissionsParams{StoreID: storeID, UserID: userID,
			Granted: permStrings(granted), Revoked: permStrings(revoked)}); err != nil {
			return err
		}
		after, err := tx.Q.GetMember(ctx, tx, queries.GetMemberParams{StoreID: storeID, UserID: userID})
		if err != nil {
			return err
		}
		resp.Member = memberPB(after)
		return audit.Write(ctx, tx, audit.Entry{Actor: a.UserID, Store: storeID, Action: "member.permissions_changed",
			TargetType: "user", TargetID: userID.String(), Summary: map[string]any{
				"granted": map[string]any{"old": before.Granted, "new": after.Granted},
				"revoked": map[string]any{"old": before.Revoked, "new": after.Revoked}}})
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	return connect.NewResponse(resp), nil
}

func (h *accountsHandler) RemoveMember(ctx context.Context, req *connect.Request[leadifyv1.RemoveMemberRequest]) (*connect.Response[leadifyv1.RemoveMemberResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	storeID, err := storeFor(a, req.Msg.StoreId, auth.StoreMembers)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	userID, err := parseID("user_id", req.Msg.UserId)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	err = h.do(ctx, a, func(tx *postgres.Tx) error {
		member, err := tx.Q.GetMember(ctx, tx, queries.GetMemberParams{StoreID: storeID, UserID: userID})
		if err != nil {
			return postgres.Translate(err)
		}
		if member.Role == string(auth.RoleSeller) {
			n, err := tx.Q.CountStoreSellers(ctx, tx, storeID)
			if err != nil {
				return err
			}
			if n <= 1 {
				return failedf("a store keeps at least one seller")
			}
		}
		if _, err := tx.Q.DeleteMember(ctx, tx, queries.DeleteMemberParams{StoreID: storeID, UserID: userID}); err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: a.UserID, Store: storeID, Action: "member.removed", TargetType: "user",
			TargetID: userID.String(), Summary: map[string]any{"email": member.Email, "role": member.Role}})
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	return connect.NewResponse(&leadifyv1.RemoveMemberResponse{}), nil
}

func (h *accountsHandler) ListAuditLog(ctx context.Context, req *connect.Request[leadifyv1.ListAuditLogRequest]) (*connect.Response[leadifyv1.ListAuditLogResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	storeID, err := storeFor(a, req.Msg.StoreId, auth.StoreAudit)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	size := req.Msg.PageSize
	if size <= 0 || size > 500 {
		size = 100
	}
	params := queries.ListAuditParams{StoreID: &storeID, Lim: size + 1}
	if tok := req.Msg.PageToken; tok != "" {
		at, id, err := decodeAuditToken(tok)
		if err != nil {
			return nil, toConnect(ctx, h.log, err)
		}
		params.BeforeAt, params.BeforeID = &at, &id
	}
	resp := &leadifyv1.ListAuditLogResponse{}
	err = h.do(ctx, a, func(tx *postgres.Tx) error {
		rows, err := tx.Q.ListAudit(ctx, tx, params)
		if err != nil {
			return err
		}
		if len(rows) > int(size) {
			rows = rows[:size]
			last := rows[len(rows)-1]
			resp.NextPageToken = encodeAuditToken(last.At, last.ID)
		}
		for _, r := range rows {
			e := &leadifyv1.AuditEntry{Id: r.ID.String(), StoreId: storeID.String(), ActorEmail: r.ActorEmail,
				Action: r.Action, TargetType: r.TargetType, TargetId: r.TargetID, SummaryJson: string(r.Summary),
				At: timestamppb.New(r.At)}
			if r.ActorUserID != nil {
				e.ActorUserId = r.ActorUserID.String()
			}
			resp.Entries = append(resp.Entries, e)
		}
		return nil
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	return connect.NewResponse(resp), nil
}

func encodeAuditToken(at time.Time, id uuid.UUID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(time.RFC3339Nano) + "|" + id.String()))
}

func decodeAuditToken(tok string) (time.Time, uuid.UUID, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err == nil {
		if ts, idStr, ok := strings.Cut(string(raw), "|"); ok {
			at, err1 := time.Parse(time.RFC3339Nano, ts)
			id, err2 := uuid.Parse(idStr)
			if err1 == nil && err2 == nil {
				return at, id, nil
			}
		}
	}
	return time.Time{}, uuid.Nil, invalidf("page_token: not a token this server issued")
}
