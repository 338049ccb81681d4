// Package woocommerce verifies WooCommerce webhooks (X-WC-Webhook-Signature:
// base64 HMAC-SHA256 of the raw body), recognises the creation ping
// (form body webhook_id=N, to be answered 200) and reads orders, as
// CARRIERS.md describes.
package woocommerce

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/syncserver/intake/shop"
)

// Delivery is a verified webhook; Ping marks the creation ping, which
// carries no order.
type Delivery struct {
	Topic      string
	DeliveryID string
	Ping       bool
	Body       []byte
}

// IsPing reports whether body is WooCommerce's creation ping: a form body
// "webhook_id=N" (sent unsigned before the webhook is saved).
func IsPing(h http.Header, body []byte) bool {
	if strings.HasPrefix(strings.TrimSpace(string(body)), "{") {
		return false
	}
	v, err := url.ParseQuery(string(body))
	return err == nil && len(v) == 1 && v.Get("webhook_id") != ""
}

// Verify checks a delivery's signature against the raw body; the ping is
// accepted without one. It fails with shop.ErrTooLarge or shop.ErrSignature.
func Verify(secret []byte, h http.Header, body []byte) (Delivery, error) {
	if len(body) > shop.MaxBody {
		return Delivery{}, shop.ErrTooLarge
	}
	if IsPing(h, body) {
		return Delivery{Ping: true, Body: body}, nil
	}
	got, err := base64.StdEncoding.DecodeString(h.Get("X-WC-Webhook-Signature"))
	if err != nil || !hmac.Equal(got, shop.SumHMAC(secret, body)) {
		return Delivery{}, shop.ErrSignature
	}
	d := Delivery{Topic: h.Get("X-WC-Webhook-Topic"), DeliveryID: h.Get("X-WC-Webhook-Delivery-ID"), Body: body}
	if d.DeliveryID == "" {
		return Delivery{}, fmt.Errorf("%w: no delivery id", shop.ErrSignature)
	}
	return d, nil
}

// Sign sets the headers WooCommerce sends for body (fakes and tests).
func Sign(secret []byte, h http.Header, topic, deliveryID string, body []byte) {
	h.Set("X-WC-Webhook-Topic", topic)
	h.Set("X-WC-Webhook-Delivery-ID", deliveryID)
	h.Set("X-WC-Webhook-Signature", base64.StdEncoding.EncodeToString(shop.SumHMAC(secret, body)))
}

type party struct {
	First    string `json:"first_name"`
	Last     string `json:"last_name"`
	Address1 string `json:"address_1"`
	Address2 string `json:"address_2"`
	City     string `json:"city"`
	Phone    string `json:"phone"`
}

type order struct {
	ID        json.Number `json:"id"`
	Number    string      `json:"number"`
	Status    string      `json:"status"`
	Currency  string      `json:"currency"`
	Total     string      `json:"total"`
	Payment   string      `json:"payment_method"`
	Note      string      `json:"customer_note"`
	Created   string      `json:"date_created"`
	Billing   party       `json:"billing"`
	Shipping  party       `json:"shipping"`
	LineItems []struct {
		Name     string      `json:"name"`
		SKU      string      `json:"sku"`
		Quantity int32       `json:"quantity"`
		Price    json.Number `json:"price"`
	} `json:"line_items"`
}

// ParseOrder reads an order.* webhook body. It fails with shop.ErrBadOrder.
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
		return shop.Order{}, fmt.Errorf("%w: total: %v", shop.ErrBadOrder, err)
	}
	ship := o.Shipping
	if ship.Address1 == "" && ship.City == "" {
		ship = o.Billing
	}
	out := shop.Order{ID: o.ID.String(), Ref: o.Number, Total: total, Currency: o.Currency, COD: o.Payment == "cod",
		Status: o.Status, Note: o.Note, Name: strings.TrimSpace(ship.First + " " + ship.Last), City: ship.City,
		Address: strings.TrimSpace(ship.Address1 + " " + ship.Address2), Phone: o.Billing.Phone,
		Created: shop.ParseTime(o.Created), Cancelled: o.Status == "cancelled" || o.Status == "trash"}
	if out.Phone == "" {
		out.Phone = o.Shipping.Phone
	}
	for _, li := range o.LineItems {
		p, err := money.Parse(li.Price.String())
		if err != nil {
			return shop.Order{}, fmt.Errorf("%w: line item price: %v", shop.ErrBadOrder, err)
		}
		out.Items = append(out.Items, shop.Item{SKU: li.SKU, Name: li.Name, Qty: li.Quantity, UnitPrice: p})
	}
	return out, nil
}

// Classify says what a topic asks: order.created, order.updated and
// order.restored carry an order; order.deleted cancels one; anything else is
// only recorded.
func Classify(topic string) shop.Action {
	switch topic {
	case "order.created", "order.updated", "order.restored":
		return shop.ActionOrder
	case "order.deleted":
		return shop.ActionCancel
	}
	return shop.ActionUnknown
}
