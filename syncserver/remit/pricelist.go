// Package remit is the carrier side of the money: price lists per carrier
// account and city, the carriers' COD remittances (entered by hand or
// imported from their CSV/XLSX statements) reconciled against the store's
// parcels, what each carrier still owes, and the fee audit that checks every
// fee a carrier charged against the price list.
package remit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/leadify/leadify/shared/city"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/syncserver/postgres"
)

// ErrInvalid wraps every validation failure of a price list, a statement or
// a remittance: the caller's input is wrong, and the message says how.
var ErrInvalid = errors.New("invalid")

// ErrConflict: a statement with this reference was already imported with
// other lines.
var ErrConflict = errors.New("conflicting statement")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// PriceList is what one carrier account charges in one city ("" for every
// city without its own list) over [ValidFrom, ValidUntil), whole days in UTC;
// a zero ValidUntil is open-ended.
type PriceList struct {
	ID          uuid.UUID
	Account     uuid.UUID
	City        string
	DeliveryFee money.Amount // charged on a delivered parcel
	ReturnFee   money.Amount // charged on a refused or returned parcel
	CODFeeFixed money.Amount // charged on a delivered parcel, plus
	CODFeeBP    int64        // basis points of the cash collected
	ValidFrom   time.Time
	ValidUntil  time.Time
}

// maxFee bounds a single fee: 100,000 MAD is not a delivery fee but a typo.
const maxFee = 100_000 * money.Dirham

// Validate checks one list on its own: known city, fees neither negative nor
// absurd, a COD rate within 0–100 %, and whole-day validity that ends after it
// starts.
func (p *PriceList) Validate() error {
	if p.Account == uuid.Nil {
		return invalidf("price list: account_id is required")
	}
	if p.City != "" {
		if _, ok := city.ByID(p.City); !ok {
			return invalidf("price list: unknown city id %q", p.City)
		}
	}
	for _, f := range []struct {
		name string
		a    money.Amount
	}{{"delivery fee", p.DeliveryFee}, {"return fee", p.ReturnFee}, {"COD fee", p.CODFeeFixed}} {
		if f.a < 0 {
			return invalidf("price list: %s %s is negative", f.name, f.a)
		}
		if f.a > maxFee {
			return invalidf("price list: %s %s is out of range", f.name, f.a)
		}
	}
	if p.CODFeeBP < 0 || p.CODFeeBP > 10_000 {
		return invalidf("price list: COD fee rate %d basis points is not between 0 and 10000", p.CODFeeBP)
	}
	if p.ValidFrom.IsZero() {
		return invalidf("price list: valid_from is required")
	}
	if !wholeDay(p.ValidFrom) || (!p.ValidUntil.IsZero() && !wholeDay(p.ValidUntil)) {
		return invalidf("price list: validity dates must be midnights UTC")
	}
	if !p.ValidUntil.IsZero() && !p.ValidUntil.After(p.ValidFrom) {
		return invalidf("price list: valid_until %s is not after valid_from %s",
			p.ValidUntil.Format(time.DateOnly), p.ValidFrom.Format(time.DateOnly))
	}
	return nil
}

func wholeDay(t time.Time) bool {
	t = t.UTC()
	return t.Equal(t.Truncate(24 * time.Hour))
}

// covers reports whether the list applies on day t.
func (p *PriceList) covers(t time.Time) bool {
	return !t.Before(p.ValidFrom) && (p.ValidUntil.IsZero() || t.Before(p.ValidUntil))
}

// overlaps reports whether two lists of the same account and city are valid
// on a common day.
func (p *PriceList) overlaps(q *PriceList) bool {
	if p.Account != q.Account || p.City != q.City {
		return false
	}
	pEndsFirst := !p.ValidUntil.IsZero() && !p.ValidUntil.After(q.ValidFrom)
	qEndsFirst := !q.ValidUntil.IsZero() && !q.ValidUntil.After(p.ValidFrom)
	return !pEndsFirst && !qEndsFirst
}

// Fees are what a carrier charges for one parcel.
type Fees struct {
	Delivery, Return, COD money.Amount
}

// Total sums the fees.
func (f Fees) Total() (money.Amount, error) { return money.Sum(f.Delivery, f.Return, f.COD) }

// Expected is what the list says a parcel costs: a delivered parcel pays the
// delivery fee and the COD fee (fixed plus the rate of the cash collected); a
// refused or returned one pays the return fee only.
func (p *PriceList) Expected(delivered bool, cod money.Amount) (Fees, error) {
	if !delivered {
		return Fees{Return: p.ReturnFee}, nil
	}
	rate, err := cod.MulRate(p.CODFeeBP)
	if err != nil {
		return Fees{}, err
	}
	c, err := p.CODFeeFixed.Add(rate)
	if err != nil {
		return Fees{}, err
	}
	return Fees{Delivery: p.DeliveryFee, COD: c}, nil
}

// PriceBook is a store's price lists, for looking up the one that applies.
type PriceBook []PriceList

// Find returns the list of the account for the city on day t: the city's own
// list if one is valid then, else the account's default ("" city) list.
func (b PriceBook) Find(account uuid.UUID, cityID string, t time.Time) (*PriceList, bool) {
	var fallback *PriceList
	for i := range b {
		p := &b[i]
		if p.Account != account || !p.covers(t) {
			continue
		}
		if p.City == cityID && cityID != "" {
			return p, true
		}
		if p.City == "" {
			fallback = p
		}
	}
	return fallback, fallback != nil
}

// Check returns an error if adding (or replacing by id) p would make two
// lists of the same account and city overlap.
func (b PriceBook) Check(p *PriceList) error {
	for i := range b {
		q := &b[i]
		if q.ID != p.ID && p.overlaps(q) {
			until := "open-ended"
			if !q.ValidUntil.IsZero() {
				until = "until " + q.ValidUntil.Format(time.DateOnly)
			}
			where := "every city"
			if q.City != "" {
				where = q.City
			}
			return invalidf("price list overlaps list %v for %s, valid from %s %s: close it first (set its valid_until)",
				q.ID, where, q.ValidFrom.Format(time.DateOnly), until)
		}
	}
	return nil
}

const priceColumns = `id, account_id, city_id, delivery_fee, return_fee, cod_fee_fixed, cod_fee_bp, valid_from, valid_until`

func scanPriceList(r pgx.CollectableRow) (PriceList, error) {
	var p PriceList
	var d, rf, cf int64
	var until *time.Time
	err := r.Scan(&p.ID, &p.Account, &p.City, &d, &rf, &cf, &p.CODFeeBP, &p.ValidFrom, &until)
	p.DeliveryFee, p.ReturnFee, p.CODFeeFixed = money.Amount(d), money.Amount(rf), money.Amount(cf)
	p.ValidFrom = p.ValidFrom.UTC()
	if until != nil {
		p.ValidUntil = until.UTC()
	}
	return p, err
}

// LoadPriceBook reads the store's price lists (of one account, or all when
// account is uuid.Nil), ordered by account, city and start.
func LoadPriceBook(ctx context.Context, tx pgx.Tx, store, account uuid.UUID) (PriceBook, error) {
	rows, err := tx.Query(ctx, `SELECT `+priceColumns+` FROM carrier_price_lists
WHERE store_id = $1 AND ($2 = '00000000-0000-0000-0000-000000000000'::uuid OR account_id = $2)
ORDER BY account_id, city_id, valid_from`, store, account)
	if err != nil {
		return nil, fmt.Errorf("load price lists: %w", err)
	}
	book, err := pgx.CollectRows(rows, scanPriceList)
	if err != nil {
		return nil, fmt.Errorf("load price lists: %w", err)
	}
	return book, nil
}

// accountOf checks that the account belongs to the store (and is visible)
// and returns its carrier. Returns postgres.ErrNotFound otherwise.
func accountOf(ctx context.Context, tx pgx.Tx, store, account uuid.UUID) (string, error) {
	var carrier string
	err := tx.QueryRow(ctx, `SELECT carrier FROM carrier_accounts WHERE store_id = $1 AND id = $2 AND deleted_at IS NULL`,
		store, account).Scan(&carrier)
	if err != nil {
		return "", fmt.Errorf("carrier account %v: %w", account, postgres.Translate(err))
	}
	return carrier, nil
}

// SavePriceList validates p and stores it (a new id inserts, a known id
// replaces that list), refusing a list that overlaps another of the same
// account and city. Concurrent saves of one account are serialised.
func SavePriceList(ctx context.Context, tx pgx.Tx, store, actor uuid.UUID, p *PriceList) error {
	if p.ID == uuid.Nil {
		p.ID = uuid.Must(uuid.NewV7())
	}
	p.ValidFrom, p.ValidUntil = utcOrZero(p.ValidFrom), utcOrZero(p.ValidUntil)
	if err := p.Validate(); err != nil {
		return err
	}
	if _, err := accountOf(ctx, tx, store, p.Account); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('carrier_price_lists:' || $1::text, 0))`, p.Account); err != nil {
		return fmt.Errorf("lock price lists: %w", err)
	}
	book, err := LoadPriceBook(ctx, tx, store, p.Account)
	if err != nil {
		return err
	}
	if err := book.Check(p); err != nil {
		return err
	}
	var until *time.Time
	if !p.ValidUntil.IsZero() {
		until = &p.ValidUntil
	}
	var actorID *uuid.UUID
	if actor != uuid.Nil {
		actorID = &actor
	}
	tag, err := tx.Exec(ctx, `INSERT INTO carrier_price_lists (store_id, id, account_id, city_id, delivery_fee, return_fee,
  cod_fee_fixed, cod_fee_bp, valid_from, valid_until, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (store_id, id) DO UPDATE SET account_id = excluded.account_id, city_id = excluded.city_id,
  delivery_fee = excluded.delivery_fee, return_fee = excluded.return_fee, cod_fee_fixed = excluded.cod_fee_fixed,
  cod_fee_bp = excluded.cod_fee_bp, valid_from = excluded.valid_from, valid_until = excluded.valid_until, updated_at = now()`,
		store, p.ID, p.Account, p.City, int64(p.DeliveryFee), int64(p.ReturnFee), int64(p.CODFeeFixed), p.CODFeeBP,
		p.ValidFrom, until, actorID)
	if err != nil {
		return fmt.Errorf("save price list: %w", postgres.Translate(err))
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("save price list %v: %w", p.ID, postgres.ErrNotFound)
	}
	return nil
}

func utcOrZero(t time.Time) time.Time {
	if t.IsZero() || t.Unix() == 0 {
		return time.Time{}
	}
	return t.UTC()
}
