package customers

// ParcelCustomersSQL is what RecordOutcomes reads a batch's parcels'
// customers with, for the plan test.
const ParcelCustomersSQL = parcelCustomersSQL

// DueSQL and CrossOffSQL are what the due customers among a batch's are
// read and crossed off with, for the plan test.
const (
	DueSQL      = dueSQL
	CrossOffSQL = crossOffSQL
)
