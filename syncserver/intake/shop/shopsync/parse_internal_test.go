package shopsync

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/syncserver/intake/shop"
)

func TestParseStoredWebhooks(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	// A deletion carries the id alone: a cancellation.
	e := Parse(id, shop.Shopify, "orders/delete", []byte(`{"id":450789469}`))
	require.Empty(t, e.dead)
	require.Equal(t, shop.ActionCancel, e.action)
	require.Equal(t, "450789469", e.order.ID)
	e = Parse(id, shop.WooCommerce, "order.deleted", []byte(`{"id":727}`))
	require.Equal(t, shop.ActionCancel, e.action)
	require.Equal(t, "727", e.order.ID)
	// A cancelled WooCommerce order (status) is an order event that cancels.
	e = Parse(id, shop.WooCommerce, "order.updated", []byte(`{"id":727,"status":"cancelled","total":"1.00"}`))
	require.Equal(t, shop.ActionOrder, e.action)
	require.True(t, e.order.Cancelled)
	// Unknown topics are recorded, not parsed; unreadable bodies are dead.
	e = Parse(id, shop.Shopify, "products/update", []byte(`not json`))
	require.Equal(t, shop.ActionUnknown, e.action)
	require.Empty(t, e.dead)
	e = Parse(id, shop.YouCan, "order.create", []byte(`{"ref":"x"}`))
	require.NotEmpty(t, e.dead)
	e = Parse(id, "magento", "order", []byte(`{}`))
	require.NotEmpty(t, e.dead)
}

func TestCellsKeepUnknownCities(t *testing.T) {
	t.Parallel()
	o := shop.Order{ID: "1", Ref: "#1", Name: "Salma", Phone: "0612345678", City: "Douar Ait Lahcen", Address: "Route 12",
		Items: []shop.Item{{SKU: "A", Name: "Huile", Qty: 2}, {SKU: "B", Name: "Savon", Qty: 1}}, Total: 34900, Status: "pending",
		Created: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	c := Cells(o)
	row := orderMapping.Parse(2, c, false)
	require.True(t, row.Accepted(), "an unknown city does not reject a shop order: %s %s", row.Reject, row.Detail)
	require.Equal(t, "Route 12, Douar Ait Lahcen", row.Address)
	require.Equal(t, "Douar Ait Lahcen", row.Custom["shop_city"])
	require.Equal(t, "Huile ×2 + Savon", row.Product)
	require.Equal(t, "A,B", row.SKU)
	require.EqualValues(t, 3, row.Qty)
	require.EqualValues(t, 34900, row.Price)
	require.Equal(t, "id:1", row.Key)
	require.Equal(t, o.Created, row.Date.UTC())
	// A known city is resolved.
	o.City = "casa"
	row = orderMapping.Parse(2, Cells(o), false)
	require.Equal(t, "casablanca", row.City.ID)
	require.Equal(t, "Route 12", row.Address)
}

// FuzzStoredWebhook: any stored body under any topic of any platform is
// parsed without panicking into an order event, an unknown topic or a dead
// webhook; an order becomes an intake row keyed by its id.
func FuzzStoredWebhook(f *testing.F) {
	for _, s := range []struct{ platform, topic, body string }{
		{shop.Shopify, "orders/create", `{"id":1,"total_price":"10.00","shipping_address":{"city":"Fès"},"line_items":[{"title":"A","quantity":0,"price":"1"}]}`},
		{shop.Shopify, "orders/delete", `{"id":1}`},
		{shop.WooCommerce, "order.updated", `{"id":727,"status":"cancelled","total":"1.00","billing":{"city":"ville inconnue"}}`},
		{shop.YouCan, "order.create", `{"id":"u","total":1e3,"created_at":1763632800,"shipping":{"address":{"city":"x"}}}`},
		{shop.YouCan, "order.cancel", `{"id":"u"}`},
	} {
		f.Add(s.platform, s.topic, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, platform, topic string, body []byte) {
		e := Parse(uuid.Nil, platform, topic, body)
		if e.dead != "" || e.action == shop.ActionUnknown {
			return
		}
		if e.order.ID == "" {
			t.Fatalf("an order event without an id: %+v", e)
		}
		if e.action != shop.ActionOrder {
			return
		}
		row := orderMapping.Parse(2, Cells(e.order), false)
		if row.Accepted() && row.Key != "id:"+e.order.ID {
			t.Fatalf("row key %q for order %q", row.Key, e.order.ID)
		}
	})
}
