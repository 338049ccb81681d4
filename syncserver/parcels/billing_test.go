package parcels_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/shared/mutation"
	"github.com/leadify/leadify/shared/parcel"
	"github.com/leadify/leadify/syncserver/billing"
	"github.com/leadify/leadify/syncserver/parcels"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"
	"github.com/leadify/leadify/syncserver/syncer"
)

// Billing reads a store's parcels with the agent who confirmed the lead and
// the confirmation and final times, within the period only.
func TestBillingSourceReadsParcelsOfThePeriod(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "billingsource")
	ctx := context.Background()
	env.SeedLeads(tn.StoreID, 1, "Billed")
	claimed, err := tn.Agent.Sync.ClaimLeads(ctx, connect.NewRequest(&leadifyv1.ClaimLeadsRequest{StoreId: tn.StoreID.String(), Count: 1}))
	require.NoError(t, err)
	lead := uuid.MustParse(claimed.Msg.LeadIds[0])
	client := uuid.NewString()
	hs, err := tn.Agent.Sync.Handshake(ctx, connect.NewRequest(&leadifyv1.HandshakeRequest{ClientId: client,
		SchemaVersion: syncer.SchemaVersion, MutationSetHash: mutation.SetHash()}))
	require.NoError(t, err)
	name, version, args, err := mutation.Encode(mutation.ConfirmLead{Lead: lead, EventID: uuid.New()})
	require.NoError(t, err)
	pushed, err := tn.Agent.Sync.Push(ctx, connect.NewRequest(&leadifyv1.PushRequest{ClientId: client, Mutations: []*leadifyv1.Mutation{{
		MutationId: hs.Msg.NextMutationId, StoreId: tn.StoreID.String(), Name: name, Version: int32(version), Args: args}}}))
	require.NoError(t, err)
	require.True(t, pushed.Msg.Results[0].Applied, pushed.Msg.Results[0].Reason)

	id, account := uuid.New(), uuid.New()
	require.NoError(t, syncer.Write(ctx, env.DB.App, postgres.StoreScope(tn.StoreID), func(w *syncer.Writer) error {
		if _, err := w.Tx.Exec(ctx, `INSERT INTO carrier_accounts (id, store_id, carrier, credentials) VALUES ($1, $2, 'ameex', 'v1:x:y')`, account, tn.StoreID); err != nil {
			return err
		}
		v, err := w.Reserve(tn.StoreID, 1)
		if err != nil {
			return err
		}
		_, err = w.Tx.Exec(ctx, `INSERT INTO parcels (store_id, id, version, created_at, updated_at, lead_id, account_id, carrier, tracking, status, creation, cod)
VALUES ($1, $2, $3, now(), now(), $4, $5, 'ameex', 'MRK1', 'delivered', 'created', 24900)`, tn.StoreID, id, v, lead, account)
		return err
	}))

	src := parcels.BillingSource{Pool: env.DB.App}
	now := time.Now()
	var got []billing.DeliveredParcel
	require.NoError(t, src.Parcels(ctx, tn.StoreID, now.Add(-time.Hour), now.Add(time.Hour), func(p billing.DeliveredParcel) error {
		got = append(got, p)
		return nil
	}))
	require.Len(t, got, 1)
	p := got[0]
	require.Equal(t, id, p.ID)
	require.Equal(t, lead, p.Lead)
	require.Equal(t, tn.Agent.UserID, p.Agent, "the agent who holds (and confirmed) the lead")
	require.Equal(t, parcel.StatusDelivered, p.Status)
	require.EqualValues(t, 24900, p.COD)
	require.Equal(t, "MRK1", p.Ref)
	require.False(t, p.ConfirmedAt.IsZero())
	require.False(t, p.DeliveredAt.IsZero())

	var none int
	require.NoError(t, src.Parcels(ctx, tn.StoreID, now.Add(-48*time.Hour), now.Add(-24*time.Hour), func(billing.DeliveredParcel) error {
		none++
		return nil
	}))
	require.Zero(t, none, "a parcel outside the period is not billed in it")
}
