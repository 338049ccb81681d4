package api_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/shared/mutation"
	"github.com/leadify/leadify/syncserver/servertest"
	"github.com/leadify/leadify/syncserver/syncer"
)

func init() {
	addIsolationCases(syncCases)
	canarySeeders = append(canarySeeders, func(t *testing.T, b *fixtureB) {
		// B's agent holds a lead, and has history on it.
		resp, err := b.Agent.Sync.ClaimLeads(context.Background(), connect.NewRequest(&leadifyv1.ClaimLeadsRequest{StoreId: b.StoreID.String(), Count: 1}))
		require.NoError(t, err)
		require.Len(t, resp.Msg.LeadIds, 1)
	})
}

// handshake registers a fresh client for the caller.
func handshake(ctx context.Context, as *servertest.Clients) (string, int64, error) {
	id := uuid.NewString()
	resp, err := as.Sync.Handshake(ctx, connect.NewRequest(&leadifyv1.HandshakeRequest{ClientId: id,
		SchemaVersion: syncer.SchemaVersion, MutationSetHash: mutation.SetHash()}))
	if err != nil {
		return "", 0, err
	}
	return id, resp.Msg.NextMutationId, nil
}

var syncCases = map[string]isolationCase{
	"/leadify.v1.SyncService/Handshake": {call: func(ctx context.Context, as *servertest.Clients, _ *fixtureB) (proto.Message, error) {
		return unary(as.Sync.Handshake, &leadifyv1.HandshakeRequest{ClientId: uuid.NewString(), SchemaVersion: syncer.SchemaVersion,
			MutationSetHash: mutation.SetHash()})
	}},
	// Pushing mutations on B's leads, named as B's store: each is rejected
	// (not found), and nothing of B comes back.
	"/leadify.v1.SyncService/Push": {call: func(ctx context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		client, next, err := handshake(ctx, as)
		if err != nil {
			return nil, err
		}
		var muts []*leadifyv1.Mutation
		for _, m := range []mutation.Mutation{
			&mutation.AddNote{Lead: b.Leads[0], EventID: uuid.New(), Note: "spy"},
			&mutation.CancelLead{Lead: b.Leads[1], EventID: uuid.New(), Reason: "sabotage"},
		} {
			for _, store := range []uuid.UUID{b.StoreID, uuid.Nil} {
				name, v, args, err := mutation.Encode(m)
				if err != nil {
					return nil, err
				}
				muts = append(muts, &leadifyv1.Mutation{MutationId: next, StoreId: store.String(), Name: name, Version: int32(v), Args: args})
				next++
			}
		}
		resp, err := as.Sync.Push(ctx, connect.NewRequest(&leadifyv1.PushRequest{ClientId: client, Mutations: muts}))
		if err != nil {
			return nil, err
		}
		for _, r := range resp.Msg.Results {
			if r.Applied {
				return resp.Msg, connect.NewError(connect.CodeInternal, nil)
			}
		}
		return resp.Msg, nil
	}},
	// Pulling with a cursor on B's scope: B is a removed scope, no rows.
	"/leadify.v1.SyncService/Pull": {call: func(ctx context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		client, _, err := handshake(ctx, as)
		if err != nil {
			return nil, err
		}
		resp, err := as.Sync.Pull(ctx, connect.NewRequest(&leadifyv1.PullRequest{ClientId: client,
			Cursors: []*leadifyv1.Cursor{{ScopeId: b.StoreID.String()}, {ScopeId: b.Agent.UserID.String()}}}))
		if err != nil {
			return nil, err
		}
		resp.Msg.RemovedScopes = nil // naming back the ids the caller sent leaks nothing
		return resp.Msg, nil
	}},
	"/leadify.v1.SyncService/ClaimLeads": {wantDenied: true, call: func(ctx context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Sync.ClaimLeads, &leadifyv1.ClaimLeadsRequest{StoreId: b.StoreID.String(), Count: 5})
	}},
	// Subscribed, asking for deliveries with a forged cursor on B's store,
	// while B's store changes: no poke or delivery names B.
	"/leadify.v1.SyncService/Subscribe": {stream: func(ctx context.Context, as *servertest.Clients, b *fixtureB) ([]proto.Message, error) {
		ctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		defer cancel()
		stream, err := as.Sync.Subscribe(ctx, connect.NewRequest(&leadifyv1.SubscribeRequest{ClientId: uuid.NewString(),
			Deliver: true, Cursors: []*leadifyv1.Cursor{{ScopeId: b.StoreID.String(), Version: 1, Epoch: 1}}}))
		if err != nil {
			return nil, err
		}
		var msgs []proto.Message
		if stream.Receive() {
			msgs = append(msgs, stream.Msg())
		}
		b.env.SeedLeads(b.StoreID, 1, "CanaryB later")
		for stream.Receive() {
			msgs = append(msgs, stream.Msg())
		}
		return msgs, nil
	}},
}
