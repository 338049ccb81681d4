package intake_test

import (
	"context"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"github.com/xuri/excelize/v2"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"

	"github.com/leadify/leadify/syncserver/intake/sample"
)

func TestPreviewAndImportThroughRPC(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	data := sample.CSV
	store := b.tenant.StoreID.String()

	prev, err := b.tenant.Seller.Intake.PreviewFile(ctx, connect.NewRequest(&leadifyv1.PreviewFileRequest{StoreId: store,
		FileName: "leads.csv", Content: data, Rows: 5}))
	require.NoError(t, err)
	require.Len(t, prev.Msg.Preview.Rows, 5)
	require.True(t, prev.Msg.Preview.KeyedByOrderId)
	require.Empty(t, prev.Msg.Preview.MappingError)
	require.Equal(t, "N° Commande", prev.Msg.Preview.Header[0])
	phone := prev.Msg.Preview.Rows[1].Cells[3]
	require.Equal(t, &leadifyv1.CellResult{Field: "phone", Column: "D", Raw: "06 51 81 90 93", Value: "+212651819093"}, phone)

	// Without the order-id column the preview says rows are keyed by hash.
	noID := &leadifyv1.ColumnMapping{Bindings: []*leadifyv1.ColumnBinding{{Field: "phone", Column: "Téléphone"},
		{Field: "product", Column: "G"}, {Field: "date", Column: "B"}}}
	prev, err = b.tenant.Seller.Intake.PreviewFile(ctx, connect.NewRequest(&leadifyv1.PreviewFileRequest{StoreId: store,
		FileName: "leads.csv", Content: data, Mapping: noID, Rows: 2}))
	require.NoError(t, err)
	require.False(t, prev.Msg.Preview.KeyedByOrderId)
	require.Contains(t, prev.Msg.Preview.KeyNote, "order-number column")

	// A mapping without a phone is explained, not imported.
	prev, err = b.tenant.Seller.Intake.PreviewFile(ctx, connect.NewRequest(&leadifyv1.PreviewFileRequest{StoreId: store,
		FileName: "leads.csv", Content: data, Mapping: &leadifyv1.ColumnMapping{Bindings: []*leadifyv1.ColumnBinding{{Field: "city", Column: "E"}}}}))
	require.NoError(t, err)
	require.Contains(t, prev.Msg.Preview.MappingError, "phone")
	_, err = b.tenant.Seller.Intake.ImportFile(ctx, connect.NewRequest(&leadifyv1.ImportFileRequest{StoreId: store,
		FileName: "leads.csv", Content: data, Mapping: &leadifyv1.ColumnMapping{Bindings: []*leadifyv1.ColumnBinding{{Field: "city", Column: "E"}}}}))
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))

	imp, err := b.tenant.Seller.Intake.ImportFile(ctx, connect.NewRequest(&leadifyv1.ImportFileRequest{StoreId: store,
		FileName: "leads.csv", Content: data}))
	require.NoError(t, err)
	require.Len(t, imp.Msg.Rows, 989)
	require.Positive(t, imp.Msg.Counts.Imported)

	runs, err := b.tenant.Seller.Intake.ListIntakeRuns(ctx, connect.NewRequest(&leadifyv1.ListIntakeRunsRequest{StoreId: store}))
	require.NoError(t, err)
	require.Len(t, runs.Msg.Runs, 1)
	require.Equal(t, "done", runs.Msg.Runs[0].State)
	require.EqualValues(t, 989, runs.Msg.Runs[0].RowsDone)
	run, err := b.tenant.Seller.Intake.GetIntakeRun(ctx, connect.NewRequest(&leadifyv1.GetIntakeRunRequest{StoreId: store, RunId: imp.Msg.RunId}))
	require.NoError(t, err)
	require.Len(t, run.Msg.Rows, int(imp.Msg.Counts.Duplicate+imp.Msg.Counts.Rejected))
	for _, r := range run.Msg.Rows {
		if r.Outcome == leadifyv1.RowOutcome_ROW_OUTCOME_DUPLICATE {
			require.NotEmpty(t, r.DuplicateOf)
		}
	}

	// An agent without leads.import cannot import.
	_, err = b.tenant.Agent.Intake.ImportFile(ctx, connect.NewRequest(&leadifyv1.ImportFileRequest{StoreId: store,
		FileName: "leads.csv", Content: data}))
	require.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err))

	// Too big, and not a file at all.
	_, err = b.tenant.Seller.Intake.ImportFile(ctx, connect.NewRequest(&leadifyv1.ImportFileRequest{StoreId: store,
		FileName: "big.csv", Content: make([]byte, 20<<20+1)}))
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
	_, err = b.tenant.Seller.Intake.ImportFile(ctx, connect.NewRequest(&leadifyv1.ImportFileRequest{StoreId: store,
		FileName: "x.xlsx", Content: []byte("PK\x03\x04 not a zip")}))
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
}

func TestImportXLSX(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := excelize.NewFile()
	rows := [][]any{
		{"N° Commande", "Téléphone", "المدينة", "Prix", "Produit", "Remarque"},
		{"X1", "0612345678", "الدار البيضاء", 249, "Robe", `=HYPERLINK("x")`},
		{"X2", "06 12 34 56 79", "Marrakech", "120 DH", "Sac"},
		{},
		{"X3", "", "Rabat", 100, "Sac"},
	}
	for i, r := range rows {
		cell, err := excelize.CoordinatesToCellName(1, i+1)
		require.NoError(t, err)
		require.NoError(t, f.SetSheetRow("Sheet1", cell, &r))
	}
	require.NoError(t, f.SetCellFormula("Sheet1", "G2", "1+1")) // never evaluated: no cached value, read as empty
	buf, err := f.WriteToBuffer()
	require.NoError(t, err)

	imp, err := b.tenant.Seller.Intake.ImportFile(context.Background(), connect.NewRequest(&leadifyv1.ImportFileRequest{
		StoreId: b.tenant.StoreID.String(), FileName: "commandes.xlsx", Content: buf.Bytes()}))
	require.NoError(t, err)
	require.Equal(t, &leadifyv1.RunCounts{Imported: 2, Rejected: 1, Empty: 1}, imp.Msg.Counts)
	require.Equal(t, "missing_phone", imp.Msg.Rows[3].Reason)
	require.EqualValues(t, 5, imp.Msg.Rows[3].RowNumber)
}
