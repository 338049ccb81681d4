// Package shop holds what the shop integrations (shopify, woocommerce,
// youcan) share: the order a webhook or a backfill turns into a lead, and
// constant-time signature checks.
package shop

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"

	"github.com/leadify/leadify/shared/money"
)

// MaxBody bounds a webhook body; larger ones are refused before parsing.
const MaxBody = 2 << 20

// Errors of signature checks and parsing, for errors.Is.
var (
	ErrSignature = errors.New("webhook signature does not match")
	ErrTooLarge  = errors.New("webhook body too large")
	ErrBadOrder  = errors.New("not an order")
)

// Item is one line of an order.
type Item struct {
	SKU       string
	Name      string
	Qty       int32
	UnitPrice money.Amount
}

// Order is a shop order as Leadify needs it.
type Order struct {
	ID       string // the platform's order id
	Ref      string // what the seller calls it: "#1001"
	Name     string
	Phone    string // as the customer typed it
	City     string
	Address  string
	Items    []Item
	Total    money.Amount
	Currency string
	COD      bool // paid on delivery
	Status   string
	Note     string
}

// SumHMAC is HMAC-SHA256 of body under secret.
func SumHMAC(secret, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return m.Sum(nil)
}
