// Package youcan verifies YouCan webhooks (x-youcan-signature: hex
// HMAC-SHA256 under the OAuth client secret) and reads their orders, as
// CARRIERS.md describes: YouCan's own example signs a re-encoded JSON body,
// so the raw body is tried first, then its compact and PHP-style
// (json_encode: "\/" and \uXXXX escapes) re-encodings.
package youcan

import (
	"bytes"
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/syncserver/intake/shop"
)

// Verify checks the signature against the raw body, then its re-encodings.
// It fails with shop.ErrTooLarge or shop.ErrSignature.
func Verify(secret []byte, h http.Header, body []byte) error {
	if len(body) > shop.MaxBody {
		return shop.ErrTooLarge
	}
	got, err := hex.DecodeString(strings.TrimSpace(h.Get("X-Youcan-Signature")))
	if err != nil || len(got) == 0 {
		return shop.ErrSignature
	}
	for _, b := range candidates(body) {
		if hmac.Equal(got, shop.SumHMAC(secret, b)) {
			return nil
		}
	}
	return shop.ErrSignature
}

func candidates(body []byte) [][]byte {
	out := [][]byte{body}
	var compact bytes.Buffer
	if json.Compact(&compact, body) != nil {
		return out
	}
	return append(out, compact.Bytes(), phpEncode(compact.Bytes()))
}

// phpEncode rewrites compact JSON the way PHP's json_encode writes it:
// slashes escaped, non-ASCII as \uXXXX (surrogate pairs beyond the BMP).
func phpEncode(b []byte) []byte {
	var out bytes.Buffer
	inString, escaped := false, false
	for _, r := range string(b) {
		switch {
		case escaped:
			out.WriteRune(r)
			escaped = false
		case inString && r == '\\':
			out.WriteRune(r)
			escaped = true
		case r == '"':
			inString = !inString
			out.WriteRune(r)
		case inString && r == '/':
			out.WriteString(`\/`)
		case r > 0xffff:
			a, z := utf16.EncodeRune(r)
			fmt.Fprintf(&out, `\u%04x\u%04x`, a, z)
		case r > 0x7f:
			fmt.Fprintf(&out, `\u%04x`, r)
		default:
			out.WriteRune(r)
		}
	}
	return out.Bytes()
}

// Sign returns the header YouCan sends for body (fakes and tests).
func Sign(secret []byte, h http.Header, body []byte) {
	h.Set("X-Youcan-Signature", hex.EncodeToString(shop.SumHMAC(secret, body)))
}

type address struct {
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Address   string `json:"first_line"`
	City      string `json:"city"`
	Phone     string `json:"phone"`
}

type order struct {
	ID       string          `json:"id"`
	Ref      string          `json:"ref"`
	Total    json.Number     `json:"total"`
	Currency string          `json:"currency"`
	Status   json.RawMessage `json:"status"`
	Created  json.RawMessage `json:"created_at"`
	Customer struct {
		FirstName string `json:"first_name"`
		LastName  string `json:"last_name"`
		Phone     string `json:"phone"`
	} `json:"customer"`
	Shipping *struct {
		Address *address `json:"address"`
	} `json:"shipping"`
	ShippingAddress *address `json:"shipping_address"`
	Variants        []struct {
		Price    json.Number `json:"price"`
		Quantity int32       `json:"quantity"`
		Variant  struct {
			SKU     string `json:"sku"`
			Product struct {
				Name string `json:"name"`
			} `json:"product"`
		} `json:"variant"`
	} `json:"variants"`
}

// ParseOrder reads an order webhook body; the shipping address is read from
// either "shipping.address" or "shipping_address". It fails with
// shop.ErrBadOrder.
func ParseOrder(body []byte) (shop.Order, error) {
	var o order
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&o); err != nil {
		return shop.Order{}, fmt.Errorf("%w: %v", shop.ErrBadOrder, err)
	}
	if o.ID == "" {
		return shop.Order{}, fmt.Errorf("%w: no id", shop.ErrBadOrder)
	}
	total, err := money.Parse(o.Total.String())
	if err != nil {
		return shop.Order{}, fmt.Errorf("%w: total: %v", shop.ErrBadOrder, err)
	}
	out := shop.Order{ID: o.ID, Ref: o.Ref, Total: total, Currency: o.Currency, COD: true, Phone: o.Customer.Phone,
		Name: strings.TrimSpace(o.Customer.FirstName + " " + o.Customer.LastName), Status: strings.Trim(string(o.Status), `"`)}
	out.Cancelled = strings.Contains(strings.ToLower(out.Status), "cancel")
	if c := strings.Trim(string(o.Created), `"`); c != "" {
		if secs, err := strconv.ParseInt(c, 10, 64); err == nil && secs > 0 && secs < 1<<33 {
			out.Created = time.Unix(secs, 0).UTC()
		} else {
			out.Created = shop.ParseTime(c)
		}
	}
	addr := o.ShippingAddress
	if o.Shipping != nil && o.Shipping.Address != nil {
		addr = o.Shipping.Address
	}
	if addr != nil {
		out.City, out.Address = addr.City, addr.Address
		if out.Phone == "" {
			out.Phone = addr.Phone
		}
	}
	for _, v := range o.Variants {
		p, err := money.Parse(v.Price.String())
		if err != nil {
			return shop.Order{}, fmt.Errorf("%w: variant price: %v", shop.ErrBadOrder, err)
		}
		out.Items = append(out.Items, shop.Item{SKU: v.Variant.SKU, Name: v.Variant.Product.Name, Qty: v.Quantity, UnitPrice: p})
	}
	return out, nil
}

// Classify says what an event asks: order.create and order.update carry an
// order; order.cancel and order.delete cancel one; anything else is only
// recorded. YouCan's deliveries carry no topic header: the event is the one
// the subscription named (Leadify puts it in the target URL).
func Classify(event string) shop.Action {
	switch event {
	case "order.create", "order.update", "order.updated", "order.created":
		return shop.ActionOrder
	case "order.cancel", "order.delete", "order.cancelled", "order.deleted":
		return shop.ActionCancel
	}
	return shop.ActionUnknown
}
