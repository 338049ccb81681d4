package shop_test

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/leadify/leadify/syncserver/intake/shop"
	"github.com/leadify/leadify/syncserver/intake/shop/shopify"
	"github.com/leadify/leadify/syncserver/intake/shop/woocommerce"
	"github.com/leadify/leadify/syncserver/intake/shop/youcan"
)

// FuzzVerifiers: for any body, the body signed with the secret verifies,
// the same signature under another secret or over another body does not,
// and any header value never makes a verifier panic or accept a body whose
// HMAC it is not.
func FuzzVerifiers(f *testing.F) {
	for _, s := range []string{shopifyOrder, wooOrder, youcanOrder, "", "webhook_id=1", `{"a":"\/é"}`, "\x00\xff"} {
		f.Add([]byte(s), "AAAA", "orders/create", "evt-1")
	}
	f.Fuzz(func(t *testing.T, body []byte, sig, topic, id string) {
		if len(body) > shop.MaxBody {
			return
		}
		other := append(append([]byte(nil), body...), ' ')
		// Shopify.
		h := http.Header{}
		shopify.Sign(secret, h, topic, id, body)
		if _, err := shopify.Verify(secret, h, body); err != nil && h.Get("X-Shopify-Event-Id") != "" {
			t.Fatalf("shopify: own signature refused: %v", err)
		}
		if _, err := shopify.Verify([]byte("other"), h, body); err == nil {
			t.Fatal("shopify: accepted under another secret")
		}
		if _, err := shopify.Verify(secret, h, other); err == nil {
			t.Fatal("shopify: accepted another body")
		}
		h.Set("X-Shopify-Hmac-Sha256", sig)
		if _, err := shopify.Verify(secret, h, body); err == nil && sig != base64.StdEncoding.EncodeToString(shop.SumHMAC(secret, body)) {
			t.Fatal("shopify: accepted a foreign signature")
		}
		// WooCommerce.
		h = http.Header{}
		woocommerce.Sign(secret, h, topic, id, body)
		d, err := woocommerce.Verify(secret, h, body)
		if err != nil && id != "" {
			t.Fatalf("woocommerce: own signature refused: %v", err)
		}
		if err == nil && d.Ping != woocommerce.IsPing(h, body) {
			t.Fatal("woocommerce: ping mismatch")
		}
		if _, err := woocommerce.Verify([]byte("other"), h, body); err == nil && !woocommerce.IsPing(h, body) {
			t.Fatal("woocommerce: accepted under another secret")
		}
		h.Set("X-WC-Webhook-Signature", sig)
		if d, err := woocommerce.Verify(secret, h, body); err == nil && !d.Ping && sig != base64.StdEncoding.EncodeToString(shop.SumHMAC(secret, body)) {
			t.Fatal("woocommerce: accepted a foreign signature")
		}
		// YouCan: raw first, then re-encodings; never a foreign signature.
		h = http.Header{}
		youcan.Sign(secret, h, body)
		if err := youcan.Verify(secret, h, body); err != nil {
			t.Fatalf("youcan: own signature refused: %v", err)
		}
		if youcan.Verify([]byte("other"), h, body) == nil {
			t.Fatal("youcan: accepted under another secret")
		}
		h.Set("X-Youcan-Signature", sig)
		if youcan.Verify(secret, h, body) == nil && sig != hex.EncodeToString(shop.SumHMAC(secret, body)) {
			// Only a re-encoding of the body may have been signed.
			var v any
			if json.Unmarshal(body, &v) != nil {
				t.Fatal("youcan: accepted a foreign signature over a non-JSON body")
			}
		}
	})
}

// FuzzAPIAnswers: what the shop APIs answer (GraphQL order nodes, YouCan
// pages, bare ids) never panics the readers; errors are ErrBadOrder.
func FuzzAPIAnswers(f *testing.F) {
	for _, s := range []string{
		`{"id":"gid://shopify/Order/1","name":"#1","createdAt":"2026-11-20T10:00:00Z","totalPriceSet":{"shopMoney":{"amount":"10.00"}},
"paymentGatewayNames":["Cash on Delivery (COD)"],"lineItems":{"edges":[{"node":{"title":"A","sku":"S","quantity":1,"originalUnitPriceSet":{"shopMoney":{"amount":"x"}}}}]}}`,
		`{"data":[{"id":"a"}],"meta":{"pagination":{"total_pages":3}}}`, `[{"id":1}]`, `{"id":null}`, `{"id":"a b"}`, `{"data":null}`, `7`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var g shopify.GQLOrder
		if json.Unmarshal(body, &g) == nil {
			o, err := g.Order()
			if err != nil && !errors.Is(err, shop.ErrBadOrder) {
				t.Fatalf("graphql order: %v is not ErrBadOrder", err)
			}
			if err == nil && (o.ID == "" || o.Total < 0) {
				t.Fatalf("bad order accepted: %+v", o)
			}
		}
		var p youcan.Page
		_ = json.Unmarshal(body, &p)
		if id, err := shop.ParseID(body); err == nil && id == "" {
			t.Fatal("empty id accepted")
		} else if err != nil && !errors.Is(err, shop.ErrBadOrder) {
			t.Fatalf("id: %v is not ErrBadOrder", err)
		}
	})
}
