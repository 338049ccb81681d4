package billing

// ProbeSQL is what a run reads the ledger's entries of a chunk's parcels
// with, for the plan test.
const ProbeSQL = probeSQL
