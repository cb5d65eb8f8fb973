-- schema.sql - Scorewire's durable record in PostgreSQL (15 or later).
--
-- Idempotent: applying it to a database that already has it changes nothing,
-- so `make run`, the tests and an operator may apply it at every start:
--   psql "$conninfo" -v ON_ERROR_STOP=1 -f schema.sql
--
-- DESIGN
-- The store writes each batch in one transaction: feed_events, match_updates
-- and rejected_documents by COPY (append-only logs), matches and incidents by
-- upsert (latest state), and source_offsets advanced in the same transaction.
-- Every row has a deterministic key, so a batch retried after a connection
-- lost during COMMIT inserts nothing twice:
--   feed_events (source, seq)          an event is written only in the
--                                      transaction that moves source_offsets
--                                      past it: no row ever lies above its
--                                      source's acked_seq
--   match_updates (match_id, version)  versions only grow per match
--   rejected_documents (id)            the writer's own counter, never reused:
--                                      each start of the store goes on above
--                                      max(id) and above the clock's ms * 2^20
--                                      (clear of a late commit's ids)
--   matches / incidents                upserts guarded by version: an older
--                                      image never overwrites a newer one
-- Raw documents are bytea: the exact bytes received (a document may declare
-- another encoding; a rejected one may be anything). JSON that browsers saw
-- is kept as json (the exact text) in match_updates, and as jsonb in
-- matches.snapshot (queried by the page).
-- Update-heavy tables keep free space in each page (fillfactor) so that an
-- update of a row stays on its page (HOT) and leaves the index alone.
-- matches is rewritten, snapshot and all, by every batch that touches the
-- match: toast_tuple_target keeps rows up to a page inline and
-- uncompressed (by default a row past 2 kB, a snapshot late in a match, is
-- pglz-compressed at every write, and read back compressed).
-- Key columns (ids, source names) compare bytewise (COLLATE "C"), whatever
-- the database's locale: every key lookup and index insert of a batch
-- compares them, a linguistic collation costs a strcoll() each time, and
-- no one reads these keys in a linguistic order (the store loads with
-- ORDER BY ... COLLATE "C" anyway).

BEGIN;
SET LOCAL client_min_messages = warning;

CREATE TABLE IF NOT EXISTS feed_events (
    source      text        COLLATE "C" NOT NULL,
    seq         bigint      NOT NULL CHECK (seq > 0),
    received_at timestamptz NOT NULL,
    sent_at     timestamptz,
    raw         bytea       NOT NULL,
    PRIMARY KEY (source, seq)
);
COMMENT ON TABLE feed_events IS
    'One row per accepted event, exactly once; written in the transaction '
    'that advances source_offsets past it.';
COMMENT ON COLUMN feed_events.received_at IS
    'Wall clock when the last byte of the document arrived.';
COMMENT ON COLUMN feed_events.sent_at IS
    'The event''s sent attribute; NULL when absent.';
COMMENT ON COLUMN feed_events.raw IS 'The document as received, byte for byte.';
-- Time-range reads (audits, replays) on an append-only table: a BRIN index
-- costs almost nothing to maintain.
CREATE INDEX IF NOT EXISTS feed_events_received_at
    ON feed_events USING brin (received_at);

CREATE TABLE IF NOT EXISTS matches (
    id            text        COLLATE "C" PRIMARY KEY,
    version       bigint      NOT NULL CHECK (version > 0),
    sport         text,
    competition   text,
    home          text,
    away          text,
    start_at      timestamptz,
    phase         text,
    clock_time    text        CHECK (clock_time ~ '^[0-9]{2,}:[0-5][0-9]$'),
    clock_running boolean,
    home_score    bigint      CHECK (home_score >= 0),
    away_score    bigint      CHECK (away_score >= 0),
    feed          text        NOT NULL
                  CHECK (feed IN ('live', 'stale', 'offline')),
    gap           boolean     NOT NULL,
    updated_at    timestamptz NOT NULL,
    snapshot      jsonb       NOT NULL,
    start_text    text,
    msgnr         numeric(20, 0) CHECK (msgnr >= 0),
    source        text
) WITH (fillfactor = 70, toast_tuple_target = 8160);
-- A table made by an older schema.sql gets the storage setting too (the
-- key collations stay as they were: changing them rewrites the indexes,
-- an operator's decision).
ALTER TABLE matches SET (fillfactor = 70, toast_tuple_target = 8160);
COMMENT ON TABLE matches IS
    'One row per match: its latest durable state. The model is rebuilt from '
    'it (and incidents) at start-up.';
COMMENT ON COLUMN matches.version IS
    'The version browsers saw; match_updates holds every version up to it.';
COMMENT ON COLUMN matches.start_at IS
    'fixture start; NULL when absent or not an RFC 3339 time (see start_text).';
COMMENT ON COLUMN matches.clock_time IS 'MM:SS (minutes may exceed 99); NULL: no clock.';
COMMENT ON COLUMN matches.clock_running IS
    'NULL: the feed never said (a time alone, or no clock); the snapshot agrees.';
COMMENT ON COLUMN matches.home_score IS 'NULL: no score yet (both scores are NULL).';
COMMENT ON COLUMN matches.feed IS 'live, stale or offline: the state of its source''s feed.';
COMMENT ON COLUMN matches.gap IS 'A msgnr gap not yet healed by a full message.';
COMMENT ON COLUMN matches.snapshot IS
    'The match object of the WebSocket snapshot at this version; its '
    'incidents array gives the order of the live incidents.';
COMMENT ON COLUMN matches.start_text IS 'fixture start as the feed sent it.';
COMMENT ON COLUMN matches.msgnr IS
    'Last applied msgnr (the model resumes its dedupe from it); NULL: none.';
COMMENT ON COLUMN matches.source IS 'Source of the last applied event.';

CREATE TABLE IF NOT EXISTS incidents (
    match_id    text    COLLATE "C" NOT NULL,
    incident_id text    COLLATE "C" NOT NULL,
    type        text,
    team        text    CHECK (team IN ('home', 'away')),
    minute      integer CHECK (minute >= 0),
    stoppage    integer CHECK (stoppage >= 0),
    player      text,
    assist      text,
    confirmed   boolean,
    deleted     boolean NOT NULL DEFAULT false,
    version     bigint  NOT NULL CHECK (version > 0),
    PRIMARY KEY (match_id, incident_id)
) WITH (fillfactor = 70);
COMMENT ON TABLE incidents IS
    'Latest state of every incident ever seen; a removed one stays with '
    'deleted = true.';
COMMENT ON COLUMN incidents.confirmed IS
    'As the feed last said it; NULL when it never said.';
COMMENT ON COLUMN incidents.version IS
    'The match version that last wrote or removed it.';
COMMENT ON COLUMN incidents.assist IS 'The assist, or the player coming on.';

CREATE TABLE IF NOT EXISTS match_updates (
    match_id text   COLLATE "C" NOT NULL,
    version  bigint NOT NULL CHECK (version > 0),
    delta    json   NOT NULL,
    source   text,
    seq      bigint,
    PRIMARY KEY (match_id, version)
);
COMMENT ON TABLE match_updates IS
    'One row per applied change: the WebSocket message browsers received '
    '(a delta, or a snapshot for a full message).';
COMMENT ON COLUMN match_updates.delta IS 'The message text, exactly as sent.';
COMMENT ON COLUMN match_updates.source IS
    'The event that caused it (with seq); NULL when no event did.';

CREATE TABLE IF NOT EXISTS rejected_documents (
    id          bigint      PRIMARY KEY,
    source      text,
    seq         bigint,
    received_at timestamptz NOT NULL,
    reason      text        NOT NULL,
    size        bigint      NOT NULL CHECK (size >= 0),
    raw         bytea       NOT NULL
);
COMMENT ON TABLE rejected_documents IS
    'Dead letters: every rejected document with its reason.';
COMMENT ON COLUMN rejected_documents.id IS
    'Assigned by the writer, increasing; a retried batch reuses its ids.';
COMMENT ON COLUMN rejected_documents.source IS
    'NULL when the connection had not named its source yet.';
COMMENT ON COLUMN rejected_documents.seq IS
    'The seq when it could be read: it used up that seq (acks cover it).';
COMMENT ON COLUMN rejected_documents.size IS
    'Bytes of the whole document; raw keeps at most the limit.';
CREATE INDEX IF NOT EXISTS rejected_documents_received_at
    ON rejected_documents (received_at);

CREATE TABLE IF NOT EXISTS source_offsets (
    source     text        COLLATE "C" PRIMARY KEY,
    acked_seq  bigint      NOT NULL CHECK (acked_seq >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE source_offsets IS
    'Per source, the highest seq such that it and every earlier event are '
    'durable (the login reply''s acked).';

COMMIT;
