package billing_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/commission"
	"github.com/leadify/leadify/shared/invoiceseal"
	"github.com/leadify/leadify/syncserver/billing"
)

// TestIssuedPDFIsSealed: an issued invoice's PDF carries the server's seal
// over its bytes and figures, checkable with the keys the verification
// endpoint publishes; a changed byte fails.
func TestIssuedPDFIsSealed(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.saveRules(f.store, platformRule(uuid.New(), 300), agentRule(uuid.New(), commission.TriggerDelivered, 5_00))
	src := parcels(f.store, f.agent, 25, 11)
	ctx := context.Background()
	_, err := (&billing.Runner{Pool: f.pool, Reserve: f.reserve, Source: src}).Run(ctx, f.store, march)
	require.NoError(t, err)
	svc := newService(t, f, src)
	from, to := billing.MonthOf(march)
	draft, err := svc.Draft(ctx, f.store, uuid.Nil, from, to)
	require.NoError(t, err)
	rec, err := svc.Issue(ctx, f.store, draft.ID, uuid.Nil)
	require.NoError(t, err)

	srv := httptest.NewServer(svc.VerifyHandler())
	defer srv.Close()
	require.Equal(t, invoiceseal.KeysPath, billing.VerifyPath+"?"+billing.KeysQuery)
	resp, err := http.Get(srv.URL + invoiceseal.KeysPath)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var body invoiceseal.KeyList
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Len(t, body.Keys, 1)
	keys := invoiceseal.Keys{body.Keys[0].ID: body.Keys[0].PublicKey}

	seal, err := keys.Verify(rec.PDF)
	require.NoError(t, err)
	inv := rec.Invoice
	require.Equal(t, inv.ID, seal.Invoice)
	require.Equal(t, inv.Store, seal.Store)
	require.Equal(t, inv.Number, seal.Number)
	require.Equal(t, int64(inv.Totals.Net), seal.Net)
	require.Equal(t, int64(inv.Totals.PlatformFees), seal.PlatformFees)
	require.Equal(t, len(inv.Lines), seal.Lines)
	require.True(t, inv.PeriodStart.Equal(seal.PeriodStart))
	digest, err := inv.Digest()
	require.NoError(t, err)
	require.Equal(t, digest, seal.Digest, "the seal names the digest the QR code's claim signs")

	tampered := append([]byte(nil), rec.PDF...)
	tampered[len(tampered)/3] ^= 1
	_, err = keys.Verify(tampered)
	require.ErrorIs(t, err, invoiceseal.ErrBadSeal)
}
