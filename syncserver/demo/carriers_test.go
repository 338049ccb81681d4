package demo_test

import (
	"bytes"
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/parcel"
	"github.com/leadify/leadify/syncserver/billing"
	"github.com/leadify/leadify/syncserver/demo"
	"github.com/leadify/leadify/syncserver/parcels"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/remit"
	"github.com/leadify/leadify/syncserver/servertest"
)

// TestRunCarriers: after the demo's seed and sample import, the carrier
// sandboxes (Coliix, Ameex, Sendit) become the sample store's accounts, the
// agent's confirmed leads become parcels at all three by the store's city
// rules, and the demo prints them moving on their own to delivered and
// returned, then each carrier's tally.
func TestRunCarriers(t *testing.T) {
	t.Parallel()
	fake, err := demo.NewSheets("")
	require.NoError(t, err)
	t.Cleanup(fake.Close)
	env := servertest.Start(t, servertest.WithSheetsEndpoint(fake.URL+"/"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err = demo.Seed(ctx, env.Server, demo.DefaultPassword)
	require.NoError(t, err)
	_, err = demo.ImportSample(ctx, env.Server)
	require.NoError(t, err)

	var out bytes.Buffer
	require.NoError(t, demo.RunCarriers(ctx, env.DB.App, env.Server.Config().Secrets, env.URL, 24, 40*time.Millisecond, &out))
	text := out.String()
	t.Log(text)
	require.Contains(t, text, "all 24 parcels reached an end")
	for _, name := range []string{"coliix", "ameex", "sendit"} {
		require.Regexp(t, regexp.MustCompile(`parcel `+name+` .* → delivered`), text, "%s parcels delivered", name)
	}
	require.Regexp(t, regexp.MustCompile(`parcel \w+ .* → returned`), text, "parcels returned")

	// The sandbox accounts have price lists, so the parcels that ended are
	// billed with carrier fees: delivered ones a delivery and a COD fee,
	// returned ones a return fee.
	var store uuid.UUID
	require.NoError(t, postgres.InTx(ctx, env.DB.App, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		return tx.QueryRow(ctx, `SELECT id FROM stores WHERE name = $1`, demo.SampleStore).Scan(&store)
	}))
	from, to := billing.MonthOf(time.Now())
	src := remit.FeeSource{Inner: parcels.BillingSource{Pool: env.DB.App}, Pool: env.DB.App}
	var delivered, returned int
	require.NoError(t, src.Parcels(ctx, store, from.AddDate(0, -1, 0), to, func(p billing.DeliveredParcel) error {
		switch p.Status {
		case parcel.StatusDelivered:
			delivered++
			require.Positive(t, p.DeliveryFee, "delivery fee of %s", p.Ref)
			require.Positive(t, p.CODFee, "COD fee of %s", p.Ref)
			require.Zero(t, p.ReturnFee)
		case parcel.StatusReturned, parcel.StatusRefused:
			returned++
			require.Positive(t, p.ReturnFee, "return fee of %s", p.Ref)
			require.Zero(t, p.DeliveryFee)
		}
		return nil
	}))
	require.Positive(t, delivered)
	require.Positive(t, returned)
}
