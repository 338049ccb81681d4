package billing_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/leadify/leadify/syncserver/billing"
)

// Entry ids are UUIDv7s of now, each greater than the one before (the
// ledger's primary key grows at its end), across batches too.
func TestEntryIDsAreIncreasingV7(t *testing.T) {
	before := time.Now().UnixMilli()
	ids := billing.EntryIDs(50_000, 7_000)
	after := time.Now().UnixMilli()
	for i, id := range ids {
		if id.Version() != 7 || id.Variant() != uuid.RFC4122 {
			t.Fatalf("id %d %v: version %d variant %v", i, id, id.Version(), id.Variant())
		}
		sec, nsec := id.Time().UnixTime()
		ms := sec*1000 + nsec/1_000_000
		if ms < before || ms > after+1 {
			t.Fatalf("id %d %v is of %d ms, not of [%d, %d]", i, id, ms, before, after)
		}
		if i > 0 && bytes.Compare(ids[i-1][:], id[:]) >= 0 {
			t.Fatalf("id %d %v does not follow %v", i, id, ids[i-1])
		}
	}
}
