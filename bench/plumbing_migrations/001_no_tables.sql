-- The plumbing hops of the bench (bench/plumbing.py) keep no state of their own: their inbox and
-- outbox are shared/migrations'. A migration all the same, as every service has its folder.
SELECT 1;
