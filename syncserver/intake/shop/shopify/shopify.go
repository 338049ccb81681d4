// Package shopify verifies Shopify webhooks (X-Shopify-Hmac-Sha256: base64
// HMAC-SHA256 of the raw body under the app secret) and reads their orders,
// as CARRIERS.md describes.
package shopify

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/syncserver/intake/shop"
)

// Delivery is a verified webhook: its topic, its event id (deduplicate on
// it: Shopify retries deliveries) and the raw body.
type Delivery struct {
	Topic   string
	EventID string
	Shop    string
	Body    []byte
}

// Verify checks a webhook's signature against the raw body. It fails with
// shop.ErrTooLarge for a body over shop.MaxBody and shop.ErrSignature for a
// missing or wrong signature or a missing event id.
func Verify(secret []byte, h http.Header, body []byte) (Delivery, error) {
	if len(body) > shop.MaxBody {
		return Delivery{}, shop.ErrTooLarge
	}
	got, err := base64.StdEncoding.DecodeString(h.Get("X-Shopify-Hmac-Sha256"))
	if err != nil || !hmac.Equal(got, shop.SumHMAC(secret, body)) {
		return Delivery{}, shop.ErrSignature
	}
	d := Delivery{Topic: h.Get("X-Shopify-Topic"), EventID: h.Get("X-Shopify-Event-Id"), Shop: h.Get("X-Shopify-Shop-Domain"), Body: body}
	if d.EventID == "" {
		d.EventID = h.Get("X-Shopify-Webhook-Id")
	}
	if d.EventID == "" {
		return Delivery{}, fmt.Errorf("%w: no event id", shop.ErrSignature)
	}
	return d, nil
}

// Sign sets the headers Shopify sends for body (fakes and tests).
func Sign(secret []byte, h http.Header, topic, eventID string, body []byte) {
	h.Set("X-Shopify-Topic", topic)
	h.Set("X-Shopify-Event-Id", eventID)
	h.Set("X-Shopify-Webhook-Id", eventID+"-delivery")
	h.Set("X-Shopify-Hmac-Sha256", base64.StdEncoding.EncodeToString(shop.SumHMAC(secret, body)))
}

type address struct {
	Name     string `json:"name"`
	First    string `json:"first_name"`
	Last     string `json:"last_name"`
	Address1 string `json:"address1"`
	Address2 string `json:"address2"`
	City     string `json:"city"`
	Phone    string `json:"phone"`
}

type order struct {
	ID        json.Number `json:"id"`
	Name      string      `json:"name"`
	Phone     string      `json:"phone"`
	Currency  string      `json:"currency"`
	Total     string      `json:"total_price"`
	Financial string      `json:"financial_status"`
	Gateways  []string    `json:"payment_gateway_names"`
	Note      string      `json:"note"`
	CreatedAt string      `json:"created_at"`
	Customer  *struct {
		Phone string `json:"phone"`
	} `json:"customer"`
	Shipping  *address `json:"shipping_address"`
	LineItems []struct {
		SKU      string `json:"sku"`
		Title    string `json:"title"`
		Quantity int32  `json:"quantity"`
		Price    string `json:"price"`
	} `json:"line_items"`
	CancelledAt *string `json:"cancelled_at"`
}

// ParseOrder reads an orders/* webhook body. It fails with shop.ErrBadOrder
// for a body that is not an order (no id, unreadable prices).
func ParseOrder(body []byte) (shop.Order, error) {
	var o order
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if err := dec.Decode(&o); err != nil {
		return shop.Order{}, fmt.Errorf("%w: %v", shop.ErrBadOrder, err)
	}
	if o.ID == "" {
		return shop.Order{}, fmt.Errorf("%w: no id", shop.ErrBadOrder)
	}
	total, err := money.Parse(o.Total)
	if err != nil {
		return shop.Order{}, fmt.Errorf("%w: total_price: %v", shop.ErrBadOrder, err)
	}
	out := shop.Order{ID: o.ID.String(), Ref: o.Name, Phone: o.Phone, Total: total, Currency: o.Currency, Note: o.Note,
		Status: o.Financial, Created: shop.ParseTime(o.CreatedAt)}
	if o.CancelledAt != nil && *o.CancelledAt != "" {
		out.Status, out.Cancelled = "cancelled", true
	}
	for _, g := range o.Gateways {
		if strings.Contains(strings.ToLower(g), "cash on delivery") || strings.Contains(strings.ToLower(g), "cod") {
			out.COD = true
		}
	}
	if s := o.Shipping; s != nil {
		out.Name, out.City = s.Name, s.City
		if out.Name == "" {
			out.Name = strings.TrimSpace(s.First + " " + s.Last)
		}
		out.Address = strings.TrimSpace(s.Address1 + " " + s.Address2)
		if out.Phone == "" {
			out.Phone = s.Phone
		}
	}
	if out.Phone == "" && o.Customer != nil {
		out.Phone = o.Customer.Phone
	}
	for _, li := range o.LineItems {
		p, err := money.Parse(li.Price)
		if err != nil {
			return shop.Order{}, fmt.Errorf("%w: line item price: %v", shop.ErrBadOrder, err)
		}
		out.Items = append(out.Items, shop.Item{SKU: li.SKU, Name: li.Title, Qty: li.Quantity, UnitPrice: p})
	}
	return out, nil
}

// Classify says what a topic asks: orders/create, orders/updated,
// orders/paid, orders/edited and orders/fulfilled carry an order;
// orders/cancelled and orders/delete cancel one; anything else is only
// recorded.
func Classify(topic string) shop.Action {
	switch topic {
	case "orders/create", "orders/updated", "orders/paid", "orders/edited", "orders/fulfilled", "orders/partially_fulfilled":
		return shop.ActionOrder
	case "orders/cancelled", "orders/delete":
		return shop.ActionCancel
	}
	return shop.ActionUnknown
}
