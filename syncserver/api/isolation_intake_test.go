package api_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
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
	})
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
}
