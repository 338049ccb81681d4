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
	out                                                       []byte
	vals                                                      [][]byte
	oids                                                      []uint32
}

func (c *entryColumns) all() []*postgres.Column {
	return []*postgres.Column{&c.id, &c.rule, &c.parcel, &c.kind, &c.beneficiary, &c.agent, &c.status, &c.base, &c.amount,
		&c.ruleName, &c.calculation, &c.reverses, &c.occurredAt}
}

func (c *entryColumns) reset() {
	if c.id.Elem == 0 {
		for col, oid := range map[*postgres.Column]uint32{&c.id: postgres.OIDUUID, &c.rule: postgres.OIDUUID,
			&c.parcel: postgres.OIDUUID, &c.kind: postgres.OIDText, &c.beneficiary: postgres.OIDText,
			&c.agent: postgres.OIDUUID, &c.status: postgres.OIDText, &c.base: postgres.OIDInt8, &c.amount: postgres.OIDInt8,
			&c.ruleName: postgres.OIDText, &c.calculation: postgres.OIDText, &c.reverses: postgres.OIDUUID,
			&c.occurredAt: postgres.OIDTimestamptz} {
			col.Elem = oid
		}
	}
	for _, col := range c.all() {
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

// params returns insertSQL's parameters and their type oids.
func (c *entryColumns) params(store uuid.UUID, first int64) ([][]byte, []uint32) {
	c.out = c.out[:0]
	c.out = append(c.out, store[:]...)
	c.out = binary.BigEndian.AppendUint64(c.out, uint64(first))
	ends := make([]int, 0, 13)
	for _, col := range c.all() {
		c.out = col.AppendArray(c.out)
		ends = append(ends, len(c.out))
	}
	c.vals = append(c.vals[:0], c.out[:16], c.out[16:24])
	start := 24
	for _, end := range ends {
		c.vals = append(c.vals, c.out[start:end])
		start = end
	}
	c.oids = append(c.oids[:0], postgres.OIDUUID, postgres.OIDInt8)
	for _, col := range c.all() {
		c.oids = append(c.oids, col.ArrayOID())
	}
	return c.vals, c.oids
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
