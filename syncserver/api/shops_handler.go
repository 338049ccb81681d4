package api

import (
	"context"
	"errors"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/proto/gen/leadify/v1/leadifyv1connect"
	"github.com/leadify/leadify/syncserver/audit"
	"github.com/leadify/leadify/syncserver/auth"
	"github.com/leadify/leadify/syncserver/intake/shop/shopsync"
	"github.com/leadify/leadify/syncserver/postgres"
)

type shopsHandler struct {
	svc *shopsync.Service
}

var _ leadifyv1connect.ShopsServiceHandler = (*shopsHandler)(nil)

// NewShopsHandler returns the ShopsService handler over svc.
func NewShopsHandler(svc *shopsync.Service) leadifyv1connect.ShopsServiceHandler {
	return &shopsHandler{svc: svc}
}

func shopCredentialsOf(c *leadifyv1.ShopCredentials) shopsync.Credentials {
	return shopsync.Credentials{AccessToken: strings.TrimSpace(c.GetAccessToken()), ConsumerKey: strings.TrimSpace(c.GetConsumerKey()),
		ConsumerSecret: strings.TrimSpace(c.GetConsumerSecret()), WebhookSecret: c.GetWebhookSecret()}
}

func tsOf(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}

func shopConnectionPB(c shopsync.Connection) *leadifyv1.ShopConnection {
	return &leadifyv1.ShopConnection{Id: c.ID.String(), StoreId: c.StoreID.String(), Platform: c.Platform, Name: c.Name, BaseUrl: c.BaseURL,
		CodOnly: c.CODOnly, BackfillDays: int32(c.BackfillDays), CreatedAt: timestamppb.New(c.CreatedAt), LastBackfillAt: tsOf(c.LastBackfillAt),
		LastBackfillError: c.LastBackfillError, ProductsSyncedAt: tsOf(c.ProductsSyncedAt), WebhookPath: shopsync.WebhookPath(c.Platform, c.ID)}
}

func shopConfigError(err error) error {
	if errors.Is(err, shopsync.ErrPlatform) || errors.Is(err, shopsync.ErrConfig) {
		return invalidf("%v", err)
	}
	return err
}

func checkShopFields(name string, days int32) error {
	switch {
	case len(name) > 100:
		return invalidf("name: at most 100 characters")
	case days < 0 || days > 365:
		return invalidf("backfill_days: must be 0 (default 30) to 365")
	}
	return nil
}

func (h *shopsHandler) CreateShopConnection(ctx context.Context, req *connect.Request[leadifyv1.CreateShopConnectionRequest]) (*connect.Response[leadifyv1.CreateShopConnectionResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	store, err := storeFor(a, m.StoreId, auth.IntegrationsManage)
	if err == nil {
		err = checkShopFields(strings.TrimSpace(m.Name), m.BackfillDays)
	}
	if err != nil {
		return nil, toConnect(ctx, h.svc.Log, err)
	}
	resp := &leadifyv1.CreateShopConnectionResponse{}
	err = postgres.InTx(ctx, h.svc.Pool, a.Scope(), func(tx *postgres.Tx) error {
		c, err := shopsync.InsertConnection(ctx, tx, h.svc.Keyring, shopsync.NewConnection{Store: store, Platform: m.Platform,
			Name: strings.TrimSpace(m.Name), BaseURL: m.BaseUrl, Credentials: shopCredentialsOf(m.Credentials), CODOnly: !m.AllOrders,
			BackfillDays: int(m.BackfillDays)})
		if err != nil {
			return shopConfigError(err)
		}
		resp.Connection = shopConnectionPB(c)
		return audit.Write(ctx, tx, audit.Entry{Actor: a.UserID, Store: store, Action: "shop_connection.created", TargetType: "shop_connection",
			TargetID: c.ID.String(), Summary: map[string]any{"platform": c.Platform, "name": c.Name, "base_url": c.BaseURL, "cod_only": c.CODOnly}})
	})
	if err != nil {
		return nil, toConnect(ctx, h.svc.Log, err)
	}
	if c, err := h.connectionByID(ctx, a, resp.Connection.Id); err == nil {
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if resp.WebhookStatus, err = h.svc.SubscribeWebhooks(sctx, c); err != nil {
			resp.WebhookStatus = "webhook subscription failed (register " + resp.Connection.WebhookPath + " at the shop): " + err.Error()
		}
	}
	return connect.NewResponse(resp), nil
}

func (h *shopsHandler) connectionByID(ctx context.Context, a *auth.Actor, id string) (shopsync.Connection, error) {
	var c shopsync.Connection
	err := postgres.InTx(ctx, h.svc.Pool, a.Scope(), func(tx *postgres.Tx) error {
		var err error
		c, err = shopConnectionFor(ctx, tx, a, id, auth.IntegrationsManage)
		return err
	})
	return c, err
}

// shopConnectionFor loads a connection visible to the actor and checks p on
// its store; another store's connection is not found.
func shopConnectionFor(ctx context.Context, tx *postgres.Tx, a *auth.Actor, id string, p auth.Permission) (shopsync.Connection, error) {
	connID, err := parseID("connection_id", id)
	if err != nil {
		return shopsync.Connection{}, err
	}
	c, err := shopsync.LoadConnection(ctx, tx, connID)
	if err != nil {
		return shopsync.Connection{}, err
	}
	return c, a.Require(c.StoreID, p)
}

func (h *shopsHandler) UpdateShopConnection(ctx context.Context, req *connect.Request[leadifyv1.UpdateShopConnectionRequest]) (*connect.Response[leadifyv1.UpdateShopConnectionResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	if err := checkShopFields(strings.TrimSpace(m.Name), m.BackfillDays); err != nil {
		return nil, toConnect(ctx, h.svc.Log, err)
	}
	var u shopsync.Update
	if n := strings.TrimSpace(m.Name); n != "" {
		u.Name = &n
	}
	if m.BaseUrl != "" {
		u.BaseURL = &m.BaseUrl
	}
	if m.Credentials != nil {
		cr := shopCredentialsOf(m.Credentials)
		u.Credentials = &cr
	}
	if m.AllOrders != nil {
		cod := !*m.AllOrders
		u.CODOnly = &cod
	}
	if m.BackfillDays != 0 {
		d := int(m.BackfillDays)
		u.BackfillDays = &d
	}
	resp := &leadifyv1.UpdateShopConnectionResponse{}
	err = postgres.InTx(ctx, h.svc.Pool, a.Scope(), func(tx *postgres.Tx) error {
		c, err := shopConnectionFor(ctx, tx, a, m.ConnectionId, auth.IntegrationsManage)
		if err != nil {
			return err
		}
		out, changed, err := h.svc.UpdateConnection(ctx, tx, c, u)
		if err != nil {
			return shopConfigError(err)
		}
		resp.Connection = shopConnectionPB(out)
		return audit.Write(ctx, tx, audit.Entry{Actor: a.UserID, Store: c.StoreID, Action: "shop_connection.updated", TargetType: "shop_connection",
			TargetID: c.ID.String(), Summary: map[string]any{"changed": changed}})
	})
	if err != nil {
		return nil, toConnect(ctx, h.svc.Log, err)
	}
	return connect.NewResponse(resp), nil
}

func (h *shopsHandler) ListShopConnections(ctx context.Context, req *connect.Request[leadifyv1.ListShopConnectionsRequest]) (*connect.Response[leadifyv1.ListShopConnectionsResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	store, err := storeFor(a, req.Msg.StoreId, auth.IntegrationsManage)
	if err != nil {
		return nil, toConnect(ctx, h.svc.Log, err)
	}
	resp := &leadifyv1.ListShopConnectionsResponse{}
	err = postgres.InTx(ctx, h.svc.Pool, a.Scope(), func(tx *postgres.Tx) error {
		list, err := shopsync.ListConnections(ctx, tx, store)
		for _, c := range list {
			resp.Connections = append(resp.Connections, shopConnectionPB(c))
		}
		return err
	})
	if err != nil {
		return nil, toConnect(ctx, h.svc.Log, err)
	}
	return connect.NewResponse(resp), nil
}

func (h *shopsHandler) TestShopConnection(ctx context.Context, req *connect.Request[leadifyv1.TestShopConnectionRequest]) (*connect.Response[leadifyv1.TestShopConnectionResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	var c shopsync.Connection
	err = postgres.InTx(ctx, h.svc.Pool, a.Scope(), func(tx *postgres.Tx) error {
		var err error
		c, err = shopConnectionFor(ctx, tx, a, req.Msg.ConnectionId, auth.IntegrationsManage)
		return err
	})
	if err != nil {
		return nil, toConnect(ctx, h.svc.Log, err)
	}
	client, err := h.svc.Client(c)
	if err != nil {
		return nil, toConnect(ctx, h.svc.Log, err)
	}
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	resp := &leadifyv1.TestShopConnectionResponse{Ok: true}
	if err := client.Ping(tctx); err != nil {
		resp.Ok, resp.Message = false, err.Error()
	}
	return connect.NewResponse(resp), nil
}

func (h *shopsHandler) BackfillShopOrders(ctx context.Context, req *connect.Request[leadifyv1.BackfillShopOrdersRequest]) (*connect.Response[leadifyv1.BackfillShopOrdersResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	if req.Msg.Days < 0 || req.Msg.Days > 365 {
		return nil, toConnect(ctx, h.svc.Log, invalidf("days: must be 0 (the connection's window) to 365"))
	}
	err = postgres.InTx(ctx, h.svc.Pool, a.Scope(), func(tx *postgres.Tx) error {
		c, err := shopConnectionFor(ctx, tx, a, req.Msg.ConnectionId, auth.IntegrationsManage)
		if err != nil {
			return err
		}
		if err := h.svc.EnqueueBackfill(ctx, tx.Tx, shopsync.BackfillArgs{Store: c.StoreID, Connection: c.ID, Days: int(req.Msg.Days)}); err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: a.UserID, Store: c.StoreID, Action: "shop_connection.backfill", TargetType: "shop_connection",
			TargetID: c.ID.String(), Summary: map[string]any{"days": req.Msg.Days}})
	})
	if err != nil {
		return nil, toConnect(ctx, h.svc.Log, err)
	}
	return connect.NewResponse(&leadifyv1.BackfillShopOrdersResponse{}), nil
}

func (h *shopsHandler) SyncShopProducts(ctx context.Context, req *connect.Request[leadifyv1.SyncShopProductsRequest]) (*connect.Response[leadifyv1.SyncShopProductsResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	err = postgres.InTx(ctx, h.svc.Pool, a.Scope(), func(tx *postgres.Tx) error {
		c, err := shopConnectionFor(ctx, tx, a, req.Msg.ConnectionId, auth.IntegrationsManage)
		if err != nil {
			return err
		}
		return h.svc.EnqueueProducts(ctx, tx.Tx, shopsync.ProductsArgs{Store: c.StoreID, Connection: c.ID})
	})
	if err != nil {
		return nil, toConnect(ctx, h.svc.Log, err)
	}
	return connect.NewResponse(&leadifyv1.SyncShopProductsResponse{}), nil
}

func (h *shopsHandler) ListShopProducts(ctx context.Context, req *connect.Request[leadifyv1.ListShopProductsRequest]) (*connect.Response[leadifyv1.ListShopProductsResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	store, err := storeFor(a, req.Msg.StoreId, auth.StoreView)
	conn := uuid.Nil
	if err == nil && req.Msg.ConnectionId != "" {
		conn, err = parseID("connection_id", req.Msg.ConnectionId)
	}
	if err != nil {
		return nil, toConnect(ctx, h.svc.Log, err)
	}
	resp := &leadifyv1.ListShopProductsResponse{}
	err = postgres.InTx(ctx, h.svc.Pool, a.Scope(), func(tx *postgres.Tx) error {
		list, err := shopsync.ListProducts(ctx, tx, store, conn)
		for _, p := range list {
			pb := &leadifyv1.ShopProduct{ConnectionId: p.Connection.String(), ExternalId: p.ExternalID, Sku: p.SKU, Name: p.Name, Price: p.Price,
				Reserved: p.Reserved, UpdatedAt: timestamppb.New(p.UpdatedAt)}
			if p.Stock != nil {
				pb.StockTracked, pb.Stock, pb.Available = true, *p.Stock, *p.Stock-p.Reserved
			}
			resp.Products = append(resp.Products, pb)
		}
		return err
	})
	if err != nil {
		return nil, toConnect(ctx, h.svc.Log, err)
	}
	return connect.NewResponse(resp), nil
}
