package customers

// ParcelCustomersSQL is what RecordOutcomes reads a batch's parcels'
// customers with, for the plan test.
const ParcelCustomersSQL = parcelCustomersSQL
