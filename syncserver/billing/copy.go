package billing

import (
	crand "crypto/rand"
	"encoding/binary"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
)

// Type oids of the binary parameters a batch insert binds.
const (
	oidInt8             = 20
	oidText             = 25
	oidUUID             = 2950
	oidTimestamptz      = 1184
	oidInt8Array        = 1016
	oidTextArray        = 1009
	oidUUIDArray        = 2951
	oidTimestamptzArray = 1185
)

// pgEpochMicros is the zero of PostgreSQL's timestamps.
var pgEpochMicros = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

// column is one column of a batch, built as the body of a one-dimensional
// PostgreSQL array in binary format: no text formatting or parsing on
// either side, and no per-value interface boxing.
type column struct {
	buf     []byte
	elem    uint32 // element type oid
	n       int
	hasNull bool
}

func (c *column) reset() { c.buf, c.n, c.hasNull = c.buf[:0], 0, false }

func (c *column) null() {
	c.buf = binary.BigEndian.AppendUint32(c.buf, 0xffffffff)
	c.n++
	c.hasNull = true
}

func (c *column) uuid(id uuid.UUID) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, 16)
	c.buf = append(c.buf, id[:]...)
	c.n++
}

// nullUUID writes uuid.Nil as NULL.
func (c *column) nullUUID(id uuid.UUID) {
	if id == uuid.Nil {
		c.null()
		return
	}
	c.uuid(id)
}

func (c *column) int8(v int64) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, 8)
	c.buf = binary.BigEndian.AppendUint64(c.buf, uint64(v))
	c.n++
}

func (c *column) text(s string) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, uint32(len(s)))
	c.buf = append(c.buf, s...)
	c.n++
}

// timestamptz writes t as microseconds since 2000-01-01 UTC.
func (c *column) timestamptz(t time.Time) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, 8)
	c.buf = binary.BigEndian.AppendUint64(c.buf, uint64(t.UnixMicro()-pgEpochMicros))
	c.n++
}

// array appends the column as a binary array value to dst.
func (c *column) array(dst []byte) []byte {
	flags := uint32(0)
	if c.hasNull {
		flags = 1
	}
	dst = binary.BigEndian.AppendUint32(dst, 1) // dimensions
	dst = binary.BigEndian.AppendUint32(dst, flags)
	dst = binary.BigEndian.AppendUint32(dst, c.elem)
	dst = binary.BigEndian.AppendUint32(dst, uint32(c.n))
	dst = binary.BigEndian.AppendUint32(dst, 1) // lower bound
	return append(dst, c.buf...)
}

// entryColumns are the columns of insertSQL's arrays, $3 to $15.
type entryColumns struct {
	id, rule, parcel, kind, beneficiary, agent, status        column
	base, amount, ruleName, calculation, reverses, occurredAt column
	out                                                       []byte
	vals                                                      [][]byte
	oids                                                      []uint32
}

func (c *entryColumns) all() []*column {
	return []*column{&c.id, &c.rule, &c.parcel, &c.kind, &c.beneficiary, &c.agent, &c.status, &c.base, &c.amount,
		&c.ruleName, &c.calculation, &c.reverses, &c.occurredAt}
}

func (c *entryColumns) reset() {
	if c.id.elem == 0 {
		for col, oid := range map[*column]uint32{&c.id: oidUUID, &c.rule: oidUUID, &c.parcel: oidUUID, &c.kind: oidText,
			&c.beneficiary: oidText, &c.agent: oidUUID, &c.status: oidText, &c.base: oidInt8, &c.amount: oidInt8,
			&c.ruleName: oidText, &c.calculation: oidText, &c.reverses: oidUUID, &c.occurredAt: oidTimestamptz} {
			col.elem = oid
		}
	}
	for _, col := range c.all() {
		col.reset()
	}
}

// len is the number of entries added: every entry has an id.
func (c *entryColumns) len() int { return c.id.n }

// add appends one entry: its key and time from r, the rest from e.
func (c *entryColumns) add(id uuid.UUID, r *entryRow, e *storedEntry, reverses uuid.UUID) {
	c.id.uuid(id)
	c.rule.uuid(r.RuleID)
	c.parcel.uuid(r.ParcelID)
	c.kind.text(string(r.Kind))
	c.beneficiary.text(e.beneficiary)
	c.agent.nullUUID(e.agent)
	c.status.text(e.status)
	c.base.int8(e.base)
	c.amount.int8(e.amount)
	c.ruleName.text(e.ruleName)
	c.calculation.text(e.calculation)
	c.reverses.nullUUID(reverses)
	c.occurredAt.timestamptz(r.OccurredAt)
}

// params returns insertSQL's parameters and their type oids.
func (c *entryColumns) params(store uuid.UUID, first int64) ([][]byte, []uint32) {
	c.out = c.out[:0]
	c.out = append(c.out, store[:]...)
	c.out = binary.BigEndian.AppendUint64(c.out, uint64(first))
	ends := make([]int, 0, 13)
	for _, col := range c.all() {
		c.out = col.array(c.out)
		ends = append(ends, len(c.out))
	}
	c.vals = append(c.vals[:0], c.out[:16], c.out[16:24])
	start := 24
	for _, end := range ends {
		c.vals = append(c.vals, c.out[start:end])
		start = end
	}
	c.oids = append(c.oids[:0], oidUUID, oidInt8)
	for _, col := range c.all() {
		c.oids = append(c.oids, arrayOf[col.elem])
	}
	return c.vals, c.oids
}

var arrayOf = map[uint32]uint32{oidInt8: oidInt8Array, oidText: oidTextArray, oidUUID: oidUUIDArray,
	oidTimestamptz: oidTimestamptzArray}

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
