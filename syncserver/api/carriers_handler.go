package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"google.golang.org/protobuf/types/known/timestamppb"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/proto/gen/leadify/v1/leadifyv1connect"
	"github.com/leadify/leadify/shared/city"
	"github.com/leadify/leadify/syncserver/audit"
	"github.com/leadify/leadify/syncserver/auth"
	"github.com/leadify/leadify/syncserver/parcels"
	"github.com/leadify/leadify/syncserver/postgres"
)

// maxParcelsPerRequest bounds CreateParcels.
const maxParcelsPerRequest = 5000

type carriersHandler struct {
	pool *pgxpool.Pool
	svc  *parcels.Service
	log  *slog.Logger
}

var _ leadifyv1connect.CarrierServiceHandler = (*carriersHandler)(nil)

// NewCarriersHandler returns the CarrierService handler over svc.
func NewCarriersHandler(pool *pgxpool.Pool, svc *parcels.Service, log *slog.Logger) leadifyv1connect.CarrierServiceHandler {
	return &carriersHandler{pool: pool, svc: svc, log: log}
}

func credentialsOf(c *leadifyv1.CarrierCredentials) parcels.Credentials {
	return parcels.Credentials{BaseURL: strings.TrimSpace(c.GetBaseUrl()), Token: c.GetToken(), APIID: c.GetApiId(), APIKey: c.GetApiKey(),
		Business: c.GetBusiness(), PublicKey: c.GetPublicKey(), SecretKey: c.GetSecretKey()}
}

func webhookPath(carrierName string, id uuid.UUID, token string) string {
	return parcels.WebhookURL("", carrierName, id, token)
}

func carrierAccountPB(id, store uuid.UUID, carrierName, label string, concurrency int32, created time.Time) *leadifyv1.CarrierAccount {
	return &leadifyv1.CarrierAccount{Id: id.String(), StoreId: store.String(), Carrier: carrierName, Label: label,
		Concurrency: concurrency, CreatedAt: timestamppb.New(created)}
}

func (h *carriersHandler) CreateCarrierAccount(ctx context.Context, req *connect.Request[leadifyv1.CreateCarrierAccountRequest]) (*connect.Response[leadifyv1.CreateCarrierAccountResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	storeID, err := storeFor(a, req.Msg.StoreId, auth.CarriersManage)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	m := req.Msg
	label := strings.TrimSpace(m.Label)
	if len(label) > 100 {
		return nil, toConnect(ctx, h.log, invalidf("label: at most 100 characters"))
	}
	if m.Concurrency < 0 || m.Concurrency > 64 {
		return nil, toConnect(ctx, h.log, invalidf("concurrency: must be 0 (default) to 64"))
	}
	creds := credentialsOf(m.Credentials)
	if _, err := parcels.Dial(m.Carrier, creds, 0); err != nil {
		return nil, toConnect(ctx, h.log, invalidf("credentials: %v", err))
	}
	resp := &leadifyv1.CreateCarrierAccountResponse{}
	err = postgres.InTx(ctx, h.pool, a.Scope(), func(tx *postgres.Tx) error {
		id, token, err := parcels.InsertAccount(ctx, tx, h.svc.Secrets, parcels.NewAccount{Store: storeID, Carrier: m.Carrier, Label: label,
			Credentials: creds, Concurrency: int(m.Concurrency)})
		if err != nil {
			return err
		}
		var concurrency int32
		var created time.Time
		if err := tx.QueryRow(ctx, `SELECT concurrency, created_at FROM carrier_accounts WHERE id = $1`, id).Scan(&concurrency, &created); err != nil {
			return err
		}
		resp.Account = carrierAccountPB(id, storeID, m.Carrier, label, concurrency, created)
		resp.WebhookPath = webhookPath(m.Carrier, id, token)
		return audit.Write(ctx, tx, audit.Entry{Actor: a.UserID, Store: storeID, Action: "carrier_account.created", TargetType: "carrier_account",
			TargetID: id.String(), Summary: map[string]any{"carrier": m.Carrier, "label": label, "concurrency": concurrency}})
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	return connect.NewResponse(resp), nil
}

// accountFor loads an account visible to the actor and checks p on its
// store; another store's account is not found.
func accountFor(ctx context.Context, tx *postgres.Tx, a *auth.Actor, id string, p auth.Permission) (parcels.Account, error) {
	accountID, err := parseID("account_id", id)
	if err != nil {
		return parcels.Account{}, err
	}
	acc, err := parcels.LoadAccount(ctx, tx, accountID)
	if err != nil {
		return parcels.Account{}, err
	}
	return acc, a.Require(acc.StoreID, p)
}

func (h *carriersHandler) UpdateCarrierAccount(ctx context.Context, req *connect.Request[leadifyv1.UpdateCarrierAccountRequest]) (*connect.Response[leadifyv1.UpdateCarrierAccountResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	if m.Concurrency < 0 || m.Concurrency > 64 {
		return nil, toConnect(ctx, h.log, invalidf("concurrency: must be 0 (unchanged) to 64"))
	}
	resp := &leadifyv1.UpdateCarrierAccountResponse{}
	err = postgres.InTx(ctx, h.pool, a.Scope(), func(tx *postgres.Tx) error {
		acc, err := accountFor(ctx, tx, a, m.AccountId, auth.CarriersManage)
		if err != nil {
			return err
		}
		changed := []string{}
		sealed := acc.Sealed
		if m.Credentials != nil {
			creds := credentialsOf(m.Credentials)
			if _, err := parcels.Dial(acc.Carrier, creds, 0); err != nil {
				return invalidf("credentials: %v", err)
			}
			plain, err := json.Marshal(creds)
			if err != nil {
				return err
			}
			if sealed, err = h.svc.Secrets.Seal(plain, postgres.CarrierCredentialsAD(acc.ID)); err != nil {
				return err
			}
			changed = append(changed, "credentials")
		}
		var hash []byte
		if m.RotateWebhookToken {
			var token string
			token, hash = parcels.NewWebhookToken()
			resp.WebhookPath = webhookPath(acc.Carrier, acc.ID, token)
			changed = append(changed, "webhook_token")
		}
		if strings.TrimSpace(m.Label) != "" {
			changed = append(changed, "label")
		}
		if m.Concurrency != 0 {
			changed = append(changed, "concurrency")
		}
		var (
			label       string
			concurrency int32
			created     time.Time
		)
		err = tx.QueryRow(ctx, `UPDATE carrier_accounts SET label = coalesce(nullif($2, ''), label), concurrency = coalesce(nullif($3, 0), concurrency),
  credentials = $4, webhook_token_hash = coalesce($5, webhook_token_hash), updated_at = now()
WHERE id = $1 RETURNING label, concurrency, created_at`, acc.ID, strings.TrimSpace(m.Label), m.Concurrency, sealed, hash).Scan(&label, &concurrency, &created)
		if err != nil {
			return postgres.Translate(err)
		}
		resp.Account = carrierAccountPB(acc.ID, acc.StoreID, acc.Carrier, label, concurrency, created)
		return audit.Write(ctx, tx, audit.Entry{Actor: a.UserID, Store: acc.StoreID, Action: "carrier_account.updated", TargetType: "carrier_account",
			TargetID: acc.ID.String(), Summary: map[string]any{"changed": changed}})
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	return connect.NewResponse(resp), nil
}

func (h *carriersHandler) ListCarrierAccounts(ctx context.Context, req *connect.Request[leadifyv1.ListCarrierAccountsRequest]) (*connect.Response[leadifyv1.ListCarrierAccountsResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	storeID, err := storeFor(a, req.Msg.StoreId, auth.CarriersManage)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	resp := &leadifyv1.ListCarrierAccountsResponse{}
	err = postgres.InTx(ctx, h.pool, a.Scope(), func(tx *postgres.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, carrier, label, concurrency, created_at FROM carrier_accounts
WHERE store_id = $1 AND deleted_at IS NULL ORDER BY created_at, id`, storeID)
		if err != nil {
			return err
		}
		resp.Accounts, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*leadifyv1.CarrierAccount, error) {
			var (
				id                 uuid.UUID
				carrierName, label string
				concurrency        int32
				created            time.Time
			)
			if err := r.Scan(&id, &carrierName, &label, &concurrency, &created); err != nil {
				return nil, err
			}
			return carrierAccountPB(id, storeID, carrierName, label, concurrency, created), nil
		})
		return err
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	return connect.NewResponse(resp), nil
}

func (h *carriersHandler) TestCarrierConnection(ctx context.Context, req *connect.Request[leadifyv1.TestCarrierConnectionRequest]) (*connect.Response[leadifyv1.TestCarrierConnectionResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	var acc parcels.Account
	err = postgres.InTx(ctx, h.pool, a.Scope(), func(tx *postgres.Tx) error {
		acc, err = accountFor(ctx, tx, a, req.Msg.AccountId, auth.CarriersManage)
		return err
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	c, err := h.svc.Client(acc)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	resp := &leadifyv1.TestCarrierConnectionResponse{Ok: true}
	if err := c.CheckCredentials(cctx); err != nil {
		resp.Ok, resp.Message = false, err.Error()
	}
	return connect.NewResponse(resp), nil
}

func (h *carriersHandler) SetCarrierCityRules(ctx context.Context, req *connect.Request[leadifyv1.SetCarrierCityRulesRequest]) (*connect.Response[leadifyv1.SetCarrierCityRulesResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	storeID, err := storeFor(a, req.Msg.StoreId, auth.CarriersManage)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	seen := map[string]bool{}
	for _, r := range req.Msg.Rules {
		if _, ok := city.ByID(r.CityId); !ok {
			return nil, toConnect(ctx, h.log, invalidf("rules: %q is not a city id", r.CityId))
		}
		if seen[r.CityId] {
			return nil, toConnect(ctx, h.log, invalidf("rules: city %q listed twice", r.CityId))
		}
		seen[r.CityId] = true
	}
	resp := &leadifyv1.SetCarrierCityRulesResponse{}
	err = postgres.InTx(ctx, h.pool, a.Scope(), func(tx *postgres.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM carrier_city_rules WHERE store_id = $1`, storeID); err != nil {
			return err
		}
		for _, r := range req.Msg.Rules {
			acc, err := accountFor(ctx, tx, a, r.AccountId, auth.CarriersManage)
			if err != nil {
				return err
			}
			if acc.StoreID != storeID {
				return postgres.ErrNotFound
			}
			if _, err := tx.Exec(ctx, `INSERT INTO carrier_city_rules (store_id, city_id, account_id) VALUES ($1, $2, $3)`, storeID, r.CityId, acc.ID); err != nil {
				return err
			}
			resp.Rules = append(resp.Rules, &leadifyv1.CarrierCityRule{CityId: r.CityId, AccountId: acc.ID.String()})
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: a.UserID, Store: storeID, Action: "carrier_city_rules.set", TargetType: "store",
			TargetID: storeID.String(), Summary: map[string]any{"rules": len(req.Msg.Rules)}})
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	return connect.NewResponse(resp), nil
}

// confirmedLeadsSQL reads which of the leads $2 (up to
// maxParcelsPerRequest) of store $1 are confirmed, each once, in id order:
// one primary-key search per lead.
// By key, whatever the planner believes of the store: see
// pgtest.RequireKeyed, TestConfirmedLeadsSearchesByID.
const confirmedLeadsSQL = `SELECT l.id FROM (SELECT DISTINCT id FROM unnest($2::uuid[]) AS u(id)) u,
LATERAL (SELECT id FROM leads WHERE store_id = (SELECT $1::uuid) AND id = u.id AND status = 'confirmed'
  AND deleted_at IS NULL OFFSET 0) l
ORDER BY l.id`

func (h *carriersHandler) CreateParcels(ctx context.Context, req *connect.Request[leadifyv1.CreateParcelsRequest]) (*connect.Response[leadifyv1.CreateParcelsResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	storeID, err := storeFor(a, req.Msg.StoreId, auth.ParcelsCreate)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	if len(req.Msg.LeadIds) == 0 || len(req.Msg.LeadIds) > maxParcelsPerRequest {
		return nil, toConnect(ctx, h.log, invalidf("lead_ids: name 1 to %d leads", maxParcelsPerRequest))
	}
	ids := make([]uuid.UUID, len(req.Msg.LeadIds))
	for i, s := range req.Msg.LeadIds {
		if ids[i], err = parseID("lead_ids", s); err != nil {
			return nil, toConnect(ctx, h.log, err)
		}
	}
	resp := &leadifyv1.CreateParcelsResponse{}
	err = postgres.InTx(ctx, h.pool, a.Scope(), func(tx *postgres.Tx) error {
		var account uuid.UUID
		if req.Msg.AccountId != "" {
			acc, err := accountFor(ctx, tx, a, req.Msg.AccountId, auth.ParcelsCreate)
			if err != nil {
				return err
			}
			if acc.StoreID != storeID {
				return postgres.ErrNotFound
			}
			account = acc.ID
		}
		rows, err := tx.Query(ctx, confirmedLeadsSQL, storeID, ids)
		if err != nil {
			return err
		}
		found, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return err
		}
		if len(found) == 0 {
			return failedf("none of the leads is a confirmed lead of this store")
		}
		params := make([]river.InsertManyParams, len(found))
		for i, id := range found {
			params[i] = river.InsertManyParams{Args: parcels.CreateArgs{Store: storeID, Lead: id, Account: account}}
		}
		if _, err := h.svc.River().InsertManyTx(ctx, tx.Tx, params); err != nil {
			return err
		}
		resp.Enqueued = int32(len(found))
		return audit.Write(ctx, tx, audit.Entry{Actor: a.UserID, Store: storeID, Action: "parcels.requested", TargetType: "store",
			TargetID: storeID.String(), Summary: map[string]any{"leads": len(found), "account": account}})
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	return connect.NewResponse(resp), nil
}

func (h *carriersHandler) ListDeadWebhooks(ctx context.Context, req *connect.Request[leadifyv1.ListDeadWebhooksRequest]) (*connect.Response[leadifyv1.ListDeadWebhooksResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	if !a.PlatformAdmin {
		return nil, toConnect(ctx, h.log, auth.ErrForbidden)
	}
	limit := int(req.Msg.Limit)
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	dead, err := h.svc.ListDead(ctx, a.Scope(), limit)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	resp := &leadifyv1.ListDeadWebhooksResponse{}
	for _, d := range dead {
		resp.Webhooks = append(resp.Webhooks, &leadifyv1.DeadWebhook{Id: d.ID.String(), StoreId: d.Store.String(), AccountId: d.Account.String(),
			Carrier: d.Carrier, ReceivedAt: timestamppb.New(d.ReceivedAt), Attempts: int32(d.Attempts), LastError: d.LastError,
			Body: strings.ToValidUTF8(string(d.Body), "\uFFFD"), Query: d.Query})
	}
	return connect.NewResponse(resp), nil
}

func (h *carriersHandler) ReplayWebhook(ctx context.Context, req *connect.Request[leadifyv1.ReplayWebhookRequest]) (*connect.Response[leadifyv1.ReplayWebhookResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	if !a.PlatformAdmin {
		return nil, toConnect(ctx, h.log, auth.ErrForbidden)
	}
	storeID, err := parseID("store_id", req.Msg.StoreId)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	id, err := parseID("webhook_id", req.Msg.WebhookId)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	err = postgres.InTx(ctx, h.pool, a.Scope(), func(tx *postgres.Tx) error {
		if err := h.svc.Replay(ctx, tx, storeID, id); err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: a.UserID, Store: storeID, Action: "webhook.replayed", TargetType: "webhook_inbox", TargetID: id.String()})
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	return connect.NewResponse(&leadifyv1.ReplayWebhookResponse{}), nil
}
