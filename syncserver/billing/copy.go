package billing

import (
	crand "crypto/rand"
	"encoding/binary"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/leadify/leadify/syncserver/postgres"
)

// entryColumns are the columns of insertSQL's arrays, $3 to $15.
type entryColumns struct {
	id, rule, parcel, kind, beneficiary, agent, status        postgres.Column
	base, amount, ruleName, calculation, reverses, occurredAt postgres.Column
	p                                                         postgres.Params
}

func (c *entryColumns) all() []*postgres.Column {
	return []*postgres.Column{&c.id, &c.rule, &c.parcel, &c.kind, &c.beneficiary, &c.agent, &c.status, &c.base, &c.amount,
		&c.ruleName, &c.calculation, &c.reverses, &c.occurredAt}
}

// reset empties the columns, keeping their buffers.
func (c *entryColumns) reset() {
	const u, t, i8, ts = postgres.OIDUUID, postgres.OIDText, postgres.OIDInt8, postgres.OIDTimestamptz
	types := [...]uint32{u, u, u, t, t, u, t, i8, i8, t, t, u, ts}
	for k, col := range c.all() {
		col.Elem = types[k]
		col.Reset()
	}
}

// len is the number of entries added: every entry has an id.
func (c *entryColumns) len() int { return c.id.Len() }

// add appends one entry: its key and time from r, the rest from e.
func (c *entryColumns) add(id uuid.UUID, r *entryRow, e *storedEntry, reverses uuid.UUID) {
	c.id.UUID(id)
	c.rule.UUID(r.RuleID)
	c.parcel.UUID(r.ParcelID)
	c.kind.Text(string(r.Kind))
	c.beneficiary.Text(e.beneficiary)
	c.agent.NullUUID(e.agent)
	c.status.Text(e.status)
	c.base.Int8(e.base)
	c.amount.Int8(e.amount)
	c.ruleName.Text(e.ruleName)
	c.calculation.Text(e.calculation)
	c.reverses.NullUUID(reverses)
	c.occurredAt.Timestamptz(r.OccurredAt)
}

// params returns insertSQL's parameters, their type oids and formats.
func (c *entryColumns) params(store uuid.UUID, first int64) ([][]byte, []uint32, []int16) {
	c.p.Reset()
	c.p.UUID(store)
	c.p.Int8(first)
	for _, col := range c.all() {
		c.p.Array(col)
	}
	return c.p.Values()
}

// entryIDs mints ledger entries' ids: UUIDv7s (RFC 9562), so that the
// ledger's primary key grows at its end. The millisecond is read once per
// batch; a 42-bit sequence, starting at random each millisecond, fills
// rand_a and the top of rand_b (method 1 of the RFC's monotonicity), and 32
// random bits the rest, from a ChaCha8 stream seeded from crypto/rand.
// uuid.NewV7 reads the clock and crypto/rand for every id: a tenth of a
// commission run's own CPU.
type entryIDs struct {
	rng *rand.ChaCha8
	ms  uint64
	seq uint64
}

// begin reads the clock for the batch's ids.
func (g *entryIDs) begin() {
	if g.rng == nil {
		var seed [32]byte
		crand.Read(seed[:]) // never fails (crypto/rand)
		g.rng = rand.NewChaCha8(seed)
	}
	if ms := uint64(time.Now().UnixMilli()); ms > g.ms {
		g.ms, g.seq = ms, g.rng.Uint64()>>23 // 41 bits: room to count up
	}
}

func (g *entryIDs) next() uuid.UUID {
	g.seq++
	if g.seq >= 1<<42 {
		g.ms, g.seq = g.ms+1, 0
	}
	var u uuid.UUID
	binary.BigEndian.PutUint64(u[:8], g.ms<<16|0x7000|g.seq>>30)
	binary.BigEndian.PutUint64(u[8:], 1<<63|(g.seq&(1<<30-1))<<32|g.rng.Uint64()&0xffffffff)
	return u
}
