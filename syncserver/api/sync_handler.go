package api

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/proto/gen/leadify/v1/leadifyv1connect"
	"github.com/leadify/leadify/syncserver/syncer"
)

// heartbeat keeps idle Subscribe streams alive through proxies.
const heartbeat = 25 * time.Second

type syncHandler struct {
	svc *syncer.Service
	hub *syncer.Hub
	log *slog.Logger
}

var _ leadifyv1connect.SyncServiceHandler = (*syncHandler)(nil)

// NewSyncHandler returns the SyncService implementation.
func NewSyncHandler(svc *syncer.Service, hub *syncer.Hub, log *slog.Logger) leadifyv1connect.SyncServiceHandler {
	return &syncHandler{svc: svc, hub: hub, log: log}
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
			for scope, v := range pokes {
				msg := &leadifyv1.SubscribeResponse{Version: v}
				if scope != uuid.Nil {
					msg.ScopeId = scope.String()
				}
				if err := stream.Send(msg); err != nil {
					return err
				}
			}
		}
	}
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
