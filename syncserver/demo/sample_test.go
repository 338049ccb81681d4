package demo_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/syncserver/demo"
	"github.com/leadify/leadify/syncserver/intake"
	"github.com/leadify/leadify/syncserver/servertest"
)

// TestImportSampleThroughFakeSheets: the demo seeds its stores, then syncs the
// sample seller sheet from the fake Google Sheets API into Argan Beauty and
// prints the per-row report; a second sync changes nothing.
func TestImportSampleThroughFakeSheets(t *testing.T) {
	t.Parallel()
	fake, err := demo.NewSheets("")
	require.NoError(t, err)
	t.Cleanup(fake.Close)
	env := servertest.Start(t, servertest.WithSheetsEndpoint(fake.URL+"/"))
	ctx := context.Background()
	_, err = demo.Seed(ctx, env.Server, demo.DefaultPassword)
	require.NoError(t, err)

	rep, err := demo.ImportSample(ctx, env.Server)
	require.NoError(t, err)
	c := rep.Counts
	require.Positive(t, c.Imported)
	require.Positive(t, c.Duplicate)
	require.Positive(t, c.Rejected)
	require.Len(t, rep.Rows, c.Rows(), "every row's result is kept for the report")
	requests, _ := fake.Reads()
	require.Positive(t, requests, "the rows came through the Sheets API")

	var out bytes.Buffer
	demo.PrintReport(&out, rep)
	t.Log("\n" + out.String())
	require.Contains(t, out.String(), "imported")
	require.Contains(t, out.String(), "rejected, "+string(intake.ReasonInvalidPhone))

	again, err := demo.ImportSample(ctx, env.Server)
	require.NoError(t, err)
	require.Equal(t, c.Imported+c.Duplicate, again.Counts.Unchanged)
	require.Zero(t, again.Counts.Imported+again.Counts.Updated)
	require.True(t, strings.HasPrefix(out.String(), "sample Google Sheet"))
}
