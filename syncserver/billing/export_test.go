package billing

import "github.com/google/uuid"

// ProbeSQL is what a run reads the ledger's entries of a chunk's parcels
// with, for the plan test.
const ProbeSQL = probeSQL

// EntryIDs mints n ids as a batch does, over batches of size each.
func EntryIDs(n, size int) []uuid.UUID {
	var g entryIDs
	out := make([]uuid.UUID, 0, n)
	for len(out) < n {
		g.begin()
		for range min(size, n-len(out)) {
			out = append(out, g.next())
		}
	}
	return out
}
