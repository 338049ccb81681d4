package sheetsync_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/syncserver/intake/sheets/sheetstest"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"

	"github.com/leadify/leadify/syncserver/intake/sample"
)

// watch follows the connection's sync until its run ends.
func watch(t *testing.T, c *servertest.Clients, store, conn string) *leadifyv1.IntakeRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		stream, err := c.Intake.WatchSheetSync(ctx, connect.NewRequest(&leadifyv1.WatchSheetSyncRequest{StoreId: store, ConnectionId: conn}))
		require.NoError(t, err)
		var last *leadifyv1.IntakeRun
		for stream.Receive() {
			last = stream.Msg().Run
		}
		require.NoError(t, stream.Err())
		if last != nil && last.State != "running" {
			return last
		}
		time.Sleep(100 * time.Millisecond) // the job has not started its run yet
	}
}

func TestSheetConnectionSyncs(t *testing.T) {
	t.Parallel()
	fake := sheetstest.New()
	t.Cleanup(fake.Close)
	f := bytes.NewReader(sample.CSV)
	require.NoError(t, fake.LoadCSV("sheet-1", "Commandes", f))
	fake.Fail429(2) // the first reads are over quota: retried

	env := servertest.Start(t, servertest.WithSheetsEndpoint(fake.URL+"/"))
	tn := env.NewTenant(env.Admin(), "sheets"+uuid.NewString()[:6])
	ctx := context.Background()
	store := tn.StoreID.String()

	_, err := tn.Seller.Intake.CreateSheetConnection(ctx, connect.NewRequest(&leadifyv1.CreateSheetConnectionRequest{StoreId: store,
		Name: "Commandes", SpreadsheetId: "sheet-1", Range: "bad!1:2"}))
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))

	created, err := tn.Seller.Intake.CreateSheetConnection(ctx, connect.NewRequest(&leadifyv1.CreateSheetConnectionRequest{StoreId: store,
		Name: "Commandes", SpreadsheetId: "sheet-1", Range: "Commandes!A:L", OauthToken: "ya29.secret-token"}))
	require.NoError(t, err)
	conn := created.Msg.Connection
	require.True(t, conn.HasCredentials)
	require.NotContains(t, created.Msg.String(), "ya29")

	prev, err := tn.Seller.Intake.PreviewSheet(ctx, connect.NewRequest(&leadifyv1.PreviewSheetRequest{StoreId: store, ConnectionId: conn.Id, Rows: 3}))
	require.NoError(t, err)
	require.Len(t, prev.Msg.Preview.Rows, 3)
	require.True(t, prev.Msg.Preview.KeyedByOrderId)

	// The first sync was queued on creation.
	run := watch(t, tn.Seller, store, conn.Id)
	require.Equal(t, "done", run.State, run.Error)
	require.EqualValues(t, 989, run.RowsDone)
	require.Positive(t, run.Counts.Imported)
	require.Positive(t, run.Counts.Duplicate)

	var leads int
	env.InStore(func(tx *postgres.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM leads WHERE store_id = $1`, tn.StoreID).Scan(&leads)
	}, tn.StoreID)
	require.EqualValues(t, run.Counts.Imported+run.Counts.Duplicate, leads)

	// Sync again: every row is unchanged, nothing is written.
	_, err = tn.Seller.Intake.SyncSheetNow(ctx, connect.NewRequest(&leadifyv1.SyncSheetNowRequest{StoreId: store, ConnectionId: conn.Id}))
	require.NoError(t, err)
	var again *leadifyv1.IntakeRun
	require.Eventually(t, func() bool {
		again = watch(t, tn.Seller, store, conn.Id)
		return again.Id != run.Id
	}, time.Minute, 100*time.Millisecond)
	require.Equal(t, "done", again.State, again.Error)
	require.Equal(t, run.Counts.Imported+run.Counts.Duplicate, again.Counts.Unchanged)
	require.Zero(t, again.Counts.Imported+again.Counts.Updated)

	upd, err := tn.Seller.Intake.UpdateSheetConnection(ctx, connect.NewRequest(&leadifyv1.UpdateSheetConnectionRequest{StoreId: store,
		ConnectionId: conn.Id, SyncMinutes: 5, UpdateMask: []string{"sync_minutes"}}))
	require.NoError(t, err)
	require.EqualValues(t, 5, upd.Msg.Connection.SyncMinutes)
	list, err := tn.Seller.Intake.ListSheetConnections(ctx, connect.NewRequest(&leadifyv1.ListSheetConnectionsRequest{StoreId: store}))
	require.NoError(t, err)
	require.Len(t, list.Msg.Connections, 1)
	require.NotNil(t, list.Msg.Connections[0].LastSyncAt)
}
