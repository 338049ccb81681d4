package shop_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/syncserver/intake/shop"
	"github.com/leadify/leadify/syncserver/intake/shop/shopify"
	"github.com/leadify/leadify/syncserver/intake/shop/woocommerce"
	"github.com/leadify/leadify/syncserver/intake/shop/youcan"
)

var secret = []byte("shpss_test_secret")

const shopifyOrder = `{"id":450789469,"name":"#1001","phone":null,"email":"a@b.ma","created_at":"2026-11-20T10:00:00+01:00",
"currency":"MAD","total_price":"249.00","financial_status":"pending","payment_gateway_names":["Cash on Delivery (COD)"],
"customer":{"phone":"+212612345678"},"shipping_address":{"first_name":"Salma","last_name":"Bennani","name":"Salma Bennani",
"address1":"Bd Zerktouni 12","address2":"","city":"Casablanca","phone":"0612345678","country_code":"MA"},
"line_items":[{"id":1,"product_id":2,"variant_id":3,"title":"Huile d'argan 100ml","sku":"ARG-100","quantity":2,"price":"124.50"}],
"note":"appeler après 18h","tags":""}`

func TestShopifyWebhooks(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	shopify.Sign(secret, h, "orders/create", "evt-1", []byte(shopifyOrder))
	d, err := shopify.Verify(secret, h, []byte(shopifyOrder))
	require.NoError(t, err)
	require.Equal(t, "orders/create", d.Topic)
	require.Equal(t, "evt-1", d.EventID)

	_, err = shopify.Verify([]byte("other"), h, []byte(shopifyOrder))
	require.ErrorIs(t, err, shop.ErrSignature)
	_, err = shopify.Verify(secret, h, []byte(shopifyOrder+" "))
	require.ErrorIs(t, err, shop.ErrSignature, "the raw body is signed, byte for byte")
	_, err = shopify.Verify(secret, http.Header{}, []byte(shopifyOrder))
	require.ErrorIs(t, err, shop.ErrSignature)
	_, err = shopify.Verify(secret, h, make([]byte, shop.MaxBody+1))
	require.ErrorIs(t, err, shop.ErrTooLarge)

	o, err := shopify.ParseOrder([]byte(shopifyOrder))
	require.NoError(t, err)
	require.Equal(t, "450789469", o.ID)
	require.Equal(t, "#1001", o.Ref)
	require.True(t, o.COD)
	require.EqualValues(t, 24900, o.Total)
	require.Equal(t, "0612345678", o.Phone)
	require.Equal(t, "Casablanca", o.City)
	require.Equal(t, []shop.Item{{SKU: "ARG-100", Name: "Huile d'argan 100ml", Qty: 2, UnitPrice: 12450}}, o.Items)
	for _, bad := range []string{``, `[]`, `{}`, `{"id":1,"total_price":"gratuit"}`, `{"id":1,"total_price":"1","line_items":[{"price":"-5"}]}`} {
		_, err := shopify.ParseOrder([]byte(bad))
		require.ErrorIs(t, err, shop.ErrBadOrder, bad)
	}
}

const wooOrder = `{"id":727,"number":"727","status":"processing","currency":"MAD","total":"359.00","payment_method":"cod",
"billing":{"first_name":"Youssef","last_name":"El Fassi","address_1":"Hay Riad","city":"Rabat","phone":"06 12 34 56 78"},
"shipping":{"first_name":"","last_name":"","address_1":"","city":""},
"line_items":[{"id":1,"name":"Montre","product_id":9,"quantity":1,"sku":"M-1","price":359,"total":"359.00"}],
"customer_note":"","date_created":"2026-11-20T10:00:00"}`

func TestWooCommerceWebhooks(t *testing.T) {
	t.Parallel()
	// The creation ping is accepted unsigned, and carries no order.
	d, err := woocommerce.Verify(secret, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, []byte("webhook_id=15"))
	require.NoError(t, err)
	require.True(t, d.Ping)

	h := http.Header{}
	woocommerce.Sign(secret, h, "order.created", "d-1", []byte(wooOrder))
	d, err = woocommerce.Verify(secret, h, []byte(wooOrder))
	require.NoError(t, err)
	require.False(t, d.Ping)
	require.Equal(t, "d-1", d.DeliveryID)
	_, err = woocommerce.Verify(secret, h, []byte(strings.Replace(wooOrder, "359.00", "1.00", 1)))
	require.ErrorIs(t, err, shop.ErrSignature)
	_, err = woocommerce.Verify(secret, http.Header{}, []byte("webhook_id=15&x=1"))
	require.ErrorIs(t, err, shop.ErrSignature, "only the bare ping is unsigned")

	o, err := woocommerce.ParseOrder([]byte(wooOrder))
	require.NoError(t, err)
	require.Equal(t, "727", o.ID)
	require.True(t, o.COD)
	require.EqualValues(t, 35900, o.Total)
	require.Equal(t, "Rabat", o.City, "billing stands in for an empty shipping address")
	require.Equal(t, "06 12 34 56 78", o.Phone)
	require.Equal(t, []shop.Item{{SKU: "M-1", Name: "Montre", Qty: 1, UnitPrice: 35900}}, o.Items)
}

const youcanOrder = `{"id":"8f2c6a1e-6f0b-4f55-9a43-0b1a3c2d4e5f","ref":"YC-1001","total":199,"currency":"MAD","status":1,
"customer":{"first_name":"فاطمة","last_name":"Tazi","email":"f@t.ma","phone":"0698765432"},
"shipping_address":{"first_line":"Derb Sultan","city":"الدار البيضاء"},
"variants":[{"price":199,"quantity":1,"variant":{"sku":"EC-1","product":{"name":"Écouteurs sans fil"}}}]}`

func TestYouCanWebhooks(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	youcan.Sign(secret, h, []byte(youcanOrder))
	require.NoError(t, youcan.Verify(secret, h, []byte(youcanOrder)))
	_, err := hex.DecodeString(h.Get("X-Youcan-Signature"))
	require.NoError(t, err, "hex, not base64")

	// YouCan's own example signs the re-encoded body: compact, PHP-escaped.
	var compact bytes.Buffer
	require.NoError(t, json.Compact(&compact, []byte(youcanOrder)))
	php := strings.NewReplacer("فاطمة", `\u0641\u0627\u0637\u0645\u0629`, "الدار البيضاء",
		`\u0627\u0644\u062f\u0627\u0631 \u0627\u0644\u0628\u064a\u0636\u0627\u0621`, "É", `\u00c9`).Replace(compact.String())
	h = http.Header{}
	youcan.Sign(secret, h, []byte(php))
	require.NoError(t, youcan.Verify(secret, h, []byte(youcanOrder)), "pretty body, signature of the PHP re-encoding")
	require.ErrorIs(t, youcan.Verify([]byte("x"), h, []byte(youcanOrder)), shop.ErrSignature)
	require.ErrorIs(t, youcan.Verify(secret, http.Header{"X-Youcan-Signature": {"zz"}}, []byte(youcanOrder)), shop.ErrSignature)

	o, err := youcan.ParseOrder([]byte(youcanOrder))
	require.NoError(t, err)
	require.Equal(t, "YC-1001", o.Ref)
	require.EqualValues(t, 19900, o.Total)
	require.Equal(t, "الدار البيضاء", o.City)
	// The other spelling of the shipping address.
	o, err = youcan.ParseOrder([]byte(strings.Replace(youcanOrder, `"shipping_address":{"first_line":"Derb Sultan","city":"الدار البيضاء"}`,
		`"shipping":{"address":{"first_line":"Maarif","city":"Casablanca"}}`, 1)))
	require.NoError(t, err)
	require.Equal(t, "Casablanca", o.City)
}

// FuzzOrderParsers: no body makes a parser panic, and an error is always
// ErrBadOrder.
func FuzzOrderParsers(f *testing.F) {
	for _, s := range []string{shopifyOrder, wooOrder, youcanOrder, `{"id":1}`, `{"id":"x","total":1e999}`, "webhook_id=1"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, parse := range []func([]byte) (shop.Order, error){shopify.ParseOrder, woocommerce.ParseOrder, youcan.ParseOrder} {
			o, err := parse(body)
			if err != nil && !errors.Is(err, shop.ErrBadOrder) {
				t.Fatalf("error %v is not ErrBadOrder", err)
			}
			if err == nil && (o.ID == "" || o.Total < 0) {
				t.Fatalf("bad order accepted: %+v", o)
			}
		}
		h := http.Header{}
		_, _ = shopify.Verify(secret, h, body)
		_, _ = woocommerce.Verify(secret, h, body)
		_ = youcan.Verify(secret, http.Header{"X-Youcan-Signature": {"00"}}, body)
	})
}
