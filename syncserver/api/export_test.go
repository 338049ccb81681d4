package api

// ConfirmedLeadsSQL is what CreateParcels reads the confirmed leads among
// those named with, for the plan test.
const ConfirmedLeadsSQL = confirmedLeadsSQL
