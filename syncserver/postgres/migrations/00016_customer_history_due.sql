-- +goose Up
-- The customers whose history is still to be written onto some of a store's
-- open leads. A batch of outcomes rewrites a bounded number of leads in its
-- own transaction (it holds the store's write lock meanwhile); a customer
-- with more open leads than that is left here and a follow-up job rewrites
-- the rest in small transactions, paced. The figures themselves are always
-- read from customers: a row here only says where to look.
CREATE TABLE customer_history_due (
  store_id   uuid NOT NULL REFERENCES stores (id),
  phone_e164 text NOT NULL,
  PRIMARY KEY (store_id, phone_e164)
);
ALTER TABLE customer_history_due ENABLE ROW LEVEL SECURITY;
CREATE POLICY customer_history_due_isolation ON customer_history_due USING (app_can_see_store(store_id));

-- +goose Down
DROP TABLE customer_history_due;
