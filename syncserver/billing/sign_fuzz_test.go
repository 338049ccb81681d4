package billing_test

import (
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/leadify/leadify/syncserver/billing"
)

// FuzzParseClaim feeds arbitrary verification links to ParseClaim: it never
// panics, fails only with ErrMalformedLink, and a parsed claim survives a
// round trip through its URL. A random link never verifies.
func FuzzParseClaim(f *testing.F) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	c := billing.Claim{Store: uuid.New(), Invoice: uuid.New(), Number: 42, Total: 23_840_37, KeyID: "k1"}
	c.Signature = ed25519.Sign(priv, []byte("x"))
	f.Add(c.URL("https://app.leadify.ma"))
	keys := billing.PublicKeys{"k1": pub}
	f.Fuzz(func(t *testing.T, link string) {
		got, err := billing.ParseClaim(link)
		if err != nil {
			if !errors.Is(err, billing.ErrMalformedLink) {
				t.Fatalf("error does not wrap ErrMalformedLink: %v", err)
			}
			return
		}
		again, err := billing.ParseClaim(got.URL("https://x.test"))
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if again.Store != got.Store || again.Invoice != got.Invoice || again.Number != got.Number || again.Total != got.Total ||
			again.Digest != got.Digest || again.KeyID != got.KeyID || string(again.Signature) != string(got.Signature) {
			t.Fatalf("round trip changed the claim")
		}
		if keys.Verify(got) == nil {
			t.Fatalf("a link the server never signed verifies: %q", link)
		}
	})
}
