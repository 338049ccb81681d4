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
	"github.com/leadify/leadify/syncserver/intake"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"
)

// canaryCSV is a file store B imports: a lead named with the canary and a
// rejected row whose detail quotes it.
const canaryCSV = "N° Commande,Nom complet,Téléphone,Ville,Prix\nCANARYB-1,CanaryB Buyer,0612345678,Rabat,100\nCANARYB-2,CanaryB Other,0612345679,CanaryB City,100\n"

func init() {
	addIsolationCases(intakeCases)
	canarySeeders = append(canarySeeders, func(t *testing.T, b *fixtureB) {
		resp, err := unary(b.Seller.Intake.ImportFile, &leadifyv1.ImportFileRequest{StoreId: b.StoreID.String(),
			FileName: "canaryb.csv", Content: []byte(canaryCSV)})
		require.NoError(t, err)
		require.EqualValues(t, 1, resp.(*leadifyv1.ImportFileResponse).Counts.Rejected)
		// A sheet connection, written directly so that no sync is queued.
		b.env.InStore(func(tx *postgres.Tx) error {
			return intake.CreateSource(context.Background(), tx, intake.SourceRow{StoreID: b.StoreID, ID: uuid.New(),
				Kind: intake.KindSheet, Name: "CanaryB sheet", SpreadsheetID: "canaryb-sheet", Range: "CanaryB"})
		}, b.StoreID)
	})
}

// sheetOfB returns the id of store B's sheet connection.
func sheetOfB(ctx context.Context, b *fixtureB) (string, error) {
	var id uuid.UUID
	err := postgres.InTx(ctx, b.env.DB.App, postgres.StoreScope(b.StoreID), func(tx *postgres.Tx) error {
		return tx.QueryRow(ctx, `SELECT id FROM intake_sources WHERE store_id = $1 AND kind = 'sheet' LIMIT 1`, b.StoreID).Scan(&id)
	})
	return id.String(), err
}

// runOfB returns the id of store B's import run.
func runOfB(ctx context.Context, b *fixtureB) (uuid.UUID, error) {
	var id uuid.UUID
	err := postgres.InTx(ctx, b.env.DB.App, postgres.StoreScope(b.StoreID), func(tx *postgres.Tx) error {
		return tx.QueryRow(ctx, `SELECT id FROM intake_runs WHERE store_id = $1 LIMIT 1`, b.StoreID).Scan(&id)
	})
	return id, err
}

var intakeCases = map[string]isolationCase{
	"/leadify.v1.IntakeService/PreviewFile": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Intake.PreviewFile, &leadifyv1.PreviewFileRequest{StoreId: b.StoreID.String(), FileName: "x.csv", Content: []byte(canaryCSV)})
	}},
	"/leadify.v1.IntakeService/ImportFile": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Intake.ImportFile, &leadifyv1.ImportFileRequest{StoreId: b.StoreID.String(), FileName: "x.csv",
			Content: []byte("Phone\n0611111111\n")})
	}},
	"/leadify.v1.IntakeService/ListIntakeRuns": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Intake.ListIntakeRuns, &leadifyv1.ListIntakeRunsRequest{StoreId: b.StoreID.String()})
	}},
	// B's run, asked for under B's store and under the caller's own stores.
	"/leadify.v1.IntakeService/GetIntakeRun": {wantDenied: true, call: func(ctx context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		run, err := runOfB(ctx, b)
		if err != nil {
			return nil, err
		}
		resp, err := unary(as.Intake.GetIntakeRun, &leadifyv1.GetIntakeRunRequest{StoreId: b.StoreID.String(), RunId: run.String()})
		if err == nil {
			return resp, nil
		}
		me, merr := unary(as.Auth.Me, &leadifyv1.MeRequest{})
		if merr != nil {
			return nil, merr
		}
		for _, m := range me.(*leadifyv1.MeResponse).Memberships {
			if resp, err := unary(as.Intake.GetIntakeRun, &leadifyv1.GetIntakeRunRequest{StoreId: m.StoreId, RunId: run.String()}); err == nil {
				return resp, nil
			}
		}
		return nil, err
	}},
	"/leadify.v1.IntakeService/CreateSheetConnection": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Intake.CreateSheetConnection, &leadifyv1.CreateSheetConnectionRequest{StoreId: b.StoreID.String(),
			Name: "intruder", SpreadsheetId: "x", Range: "Sheet1"})
	}},
	"/leadify.v1.IntakeService/UpdateSheetConnection": {wantDenied: true, call: func(ctx context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		id, err := sheetOfB(ctx, b)
		if err != nil {
			return nil, err
		}
		return unary(as.Intake.UpdateSheetConnection, &leadifyv1.UpdateSheetConnectionRequest{StoreId: b.StoreID.String(),
			ConnectionId: id, Name: "pwned", UpdateMask: []string{"name"}})
	}},
	"/leadify.v1.IntakeService/ListSheetConnections": {wantDenied: true, call: func(_ context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		return unary(as.Intake.ListSheetConnections, &leadifyv1.ListSheetConnectionsRequest{StoreId: b.StoreID.String()})
	}},
	"/leadify.v1.IntakeService/PreviewSheet": {wantDenied: true, call: func(ctx context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		id, err := sheetOfB(ctx, b)
		if err != nil {
			return nil, err
		}
		return unary(as.Intake.PreviewSheet, &leadifyv1.PreviewSheetRequest{StoreId: b.StoreID.String(), ConnectionId: id})
	}},
	"/leadify.v1.IntakeService/SyncSheetNow": {wantDenied: true, call: func(ctx context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		id, err := sheetOfB(ctx, b)
		if err != nil {
			return nil, err
		}
		return unary(as.Intake.SyncSheetNow, &leadifyv1.SyncSheetNowRequest{StoreId: b.StoreID.String(), ConnectionId: id})
	}},
	"/leadify.v1.IntakeService/GetSheetScript": {wantDenied: true, call: func(ctx context.Context, as *servertest.Clients, b *fixtureB) (proto.Message, error) {
		id, err := sheetOfB(ctx, b)
		if err != nil {
			return nil, err
		}
		return unary(as.Intake.GetSheetScript, &leadifyv1.GetSheetScriptRequest{StoreId: b.StoreID.String(), ConnectionId: id, Rotate: true})
	}},
	"/leadify.v1.IntakeService/WatchSheetSync": {wantDenied: true, stream: func(ctx context.Context, as *servertest.Clients, b *fixtureB) ([]proto.Message, error) {
		id, err := sheetOfB(ctx, b)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		stream, err := as.Intake.WatchSheetSync(ctx, connect.NewRequest(&leadifyv1.WatchSheetSyncRequest{StoreId: b.StoreID.String(), ConnectionId: id}))
		if err != nil {
			return nil, err
		}
		var msgs []proto.Message
		for stream.Receive() {
			msgs = append(msgs, stream.Msg())
		}
		return msgs, stream.Err()
	}},
}
