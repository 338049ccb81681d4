package api

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/proto/gen/leadify/v1/leadifyv1connect"
	"github.com/leadify/leadify/syncserver/auth"
	"github.com/leadify/leadify/syncserver/syncer"
)

// heartbeat keeps idle Subscribe streams alive through proxies.
const heartbeat = 25 * time.Second

type syncHandler struct {
	svc  *syncer.Service
	hub  *syncer.Hub
	auth *auth.Service // re-authenticates delivering streams
	log  *slog.Logger
}

var _ leadifyv1connect.SyncServiceHandler = (*syncHandler)(nil)

// NewSyncHandler returns the SyncService implementation.
func NewSyncHandler(svc *syncer.Service, hub *syncer.Hub, authSvc *auth.Service, log *slog.Logger) leadifyv1connect.SyncServiceHandler {
	return &syncHandler{svc: svc, hub: hub, auth: authSvc, log: log}
}

func (h *syncHandler) err(ctx context.Context, err error) error {
	var inv *syncer.InvalidError
	switch {
	case errors.As(err, &inv):
		return connect.NewError(connect.CodeInvalidArgument, err)
	case errors.Is(err, syncer.ErrBatchTooLarge):
		return connect.NewError(connect.CodeInvalidArgument, err)
	case errors.Is(err, syncer.ErrNoClient), errors.Is(err, syncer.ErrUpdateNeeded):
		return connect.NewError(connect.CodeFailedPrecondition, err)
	case errors.Is(err, syncer.ErrForeignClient):
		return connect.NewError(connect.CodePermissionDenied, err)
	}
	return toConnect(ctx, h.log, err)
}

func (h *syncHandler) Handshake(ctx context.Context, req *connect.Request[leadifyv1.HandshakeRequest]) (*connect.Response[leadifyv1.HandshakeResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	client, err := parseID("client_id", req.Msg.ClientId)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	next, err := h.svc.Handshake(ctx, a, client, req.Msg.SchemaVersion, req.Msg.MutationSetHash, req.Msg.DeviceName)
	if err != nil {
		return nil, h.err(ctx, err)
	}
	return connect.NewResponse(&leadifyv1.HandshakeResponse{NextMutationId: next, Scopes: syncer.Scopes(a),
		ServerSchemaVersion: syncer.SchemaVersion, ServerTime: timestamppb.Now()}), nil
}

func (h *syncHandler) Push(ctx context.Context, req *connect.Request[leadifyv1.PushRequest]) (*connect.Response[leadifyv1.PushResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	client, err := parseID("client_id", req.Msg.ClientId)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	results, resend, err := h.svc.Push(ctx, a, client, req.Msg.Mutations)
	if err != nil {
		return nil, h.err(ctx, err)
	}
	return connect.NewResponse(&leadifyv1.PushResponse{Results: results, ResendFrom: resend}), nil
}

func (h *syncHandler) Pull(ctx context.Context, req *connect.Request[leadifyv1.PullRequest]) (*connect.Response[leadifyv1.PullResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := h.svc.Pull(ctx, a, req.Msg.Cursors, int(req.Msg.MaxRows))
	if err != nil {
		return nil, h.err(ctx, err)
	}
	return connect.NewResponse(resp), nil
}

func (h *syncHandler) Subscribe(ctx context.Context, req *connect.Request[leadifyv1.SubscribeRequest], stream *connect.ServerStream[leadifyv1.SubscribeResponse]) error {
	a, err := actorOf(ctx)
	if err != nil {
		return err
	}
	var scopes []uuid.UUID
	for _, sc := range syncer.Scopes(a) {
		scopes = append(scopes, uuid.MustParse(sc.Id))
	}
	sub := h.hub.Subscribe(scopes)
	defer sub.Close()
	var d *delivering
	if req.Msg.Deliver && h.auth != nil {
		token, _ := strings.CutPrefix(req.Header().Get("Authorization"), "Bearer ")
		d = &delivering{h: h, token: strings.TrimSpace(token), actor: a, gen: -1, follow: h.svc.NewFollower(req.Msg.Cursors)}
	}
	// A first poke: clients pull on every (re)subscribe.
	if err := stream.Send(&leadifyv1.SubscribeResponse{}); err != nil {
		return err
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := stream.Send(&leadifyv1.SubscribeResponse{}); err != nil {
				return err
			}
		case <-sub.C:
			pokes := sub.Take()
			if len(pokes) == 0 {
				pokes = map[uuid.UUID]int64{uuid.Nil: 0}
			}
			if d != nil {
				if err := d.refresh(ctx); err != nil {
					return err
				}
			}
			for scope, v := range pokes {
				msg := &leadifyv1.SubscribeResponse{Version: v}
				if scope != uuid.Nil {
					msg.ScopeId = scope.String()
				}
				if d != nil && scope != uuid.Nil {
					var err error
					if msg, err = d.follow.Message(ctx, d.actor, d.gen, scope, v); err != nil && ctx.Err() == nil {
						h.log.WarnContext(ctx, "subscribe: delivery failed, poking instead", "scope", scope, "err", err)
					}
					if msg == nil {
						continue
					}
				}
				if err := stream.Send(msg); err != nil {
					return err
				}
			}
		}
	}
}

// delivering is a Subscribe stream that sends changes rather than pokes
// (syncer.Follower): it authenticates again whenever an auth signal may have
// made its actor stale, or its session has ended.
type delivering struct {
	h      *syncHandler
	token  string
	actor  *auth.Actor
	gen    int64
	follow *syncer.Follower
}

func (d *delivering) refresh(ctx context.Context) error {
	gen := d.h.hub.AuthGeneration()
	if gen == d.gen && (d.actor.SessionExpires.IsZero() || time.Now().Before(d.actor.SessionExpires)) {
		return nil
	}
	a, err := d.h.auth.Authenticate(ctx, d.token)
	switch {
	case errors.Is(err, auth.ErrUnauthenticated):
		return connect.NewError(connect.CodeUnauthenticated, err)
	case err != nil:
		return connect.NewError(connect.CodeUnavailable, errors.New("cannot check the session right now"))
	}
	d.actor, d.gen = a, gen
	return nil
}

func (h *syncHandler) ClaimLeads(ctx context.Context, req *connect.Request[leadifyv1.ClaimLeadsRequest]) (*connect.Response[leadifyv1.ClaimLeadsResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	store, err := parseID("store_id", req.Msg.StoreId)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	ids, lease, version, err := h.svc.Claim(ctx, a, store, int(req.Msg.Count))
	if err != nil {
		return nil, h.err(ctx, err)
	}
	resp := &leadifyv1.ClaimLeadsResponse{LeaseUntil: timestamppb.New(lease), Version: version}
	for _, id := range ids {
		resp.LeadIds = append(resp.LeadIds, id.String())
	}
	return connect.NewResponse(resp), nil
}
