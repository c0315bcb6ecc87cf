// Starts mongo-java-server on 127.0.0.1 with the oplog enabled, so change streams work.
// Run through scripts/mongo-test-server, which puts the jars on the class path.
//   --port PORT    port to bind (0 picks a free one; the line printed says which)
//   --data FILE    H2 file backend: data and oplog survive a restart
// Prints one line "mongo-test-server listening on 127.0.0.1:PORT ..." once it accepts
// connections, and closes the server (flushing the H2 file) on SIGTERM or SIGINT.
//
// On top of mongo-java-server (see ChangeStreamHistory below):
//   db.adminCommand({m2dForgetHistory: 1}) makes the server behave as if its oplog had rolled
//   over at that moment: a change stream resumed from before it fails with 286
//   ChangeStreamHistoryLost, as a replica set does once the resume point left its oplog;
//   a malformed resume token fails with 260 InvalidResumeToken (mongo-java-server answers
//   "Unknown error: ..." with no code).
// and (see PostBatchResumeTokens) a change stream's getMore replies carry a postBatchResumeToken,
// so an idle stream's resume token moves on with the oplog as MongoDB's does.
import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.bson.BsonTimestamp;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;
import io.netty.channel.Channel;
import java.net.InetSocketAddress;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.function.Supplier;

public class MongoTestServer {
    public static void main(String[] args) throws Exception {
        int port = -1;
        String data = null;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--port" -> port = Integer.parseInt(args[++i]);
                case "--data" -> data = args[++i];
                default -> {
                    System.err.println("mongo-test-server: unknown option " + args[i]
                        + "; usage: mongo-test-server --port PORT [--data FILE]");
                    System.exit(2);
                }
            }
        }
        if (port < 0) {
            System.err.println("mongo-test-server: --port PORT is required (0 for any free port)");
            System.exit(2);
        }
        ChangeStreamHistory history = new ChangeStreamHistory();
        PostBatchResumeTokens tokens = new PostBatchResumeTokens();
        // The same hook on either backend: our commands and checks first, then the backend's own
        // (whose change-stream replies get their postBatchResumeToken on the way out).
        MongoBackend backend = data == null
            ? new MemoryBackend() {
                @Override
                public Document handleCommand(Channel channel, String db, String command, Document query) {
                    return history.handleCommand(this, db, command, query,
                        () -> tokens.handleCommand(this, command, query,
                            () -> super.handleCommand(channel, db, command, query)));
                }
            }
            : new H2Backend(data) {
                @Override
                public Document handleCommand(Channel channel, String db, String command, Document query) {
                    return history.handleCommand(this, db, command, query,
                        () -> tokens.handleCommand(this, command, query,
                            () -> super.handleCommand(channel, db, command, query)));
                }
            };
        MongoServer server = new MongoServer(backend);
        server.enableOplog();
        history.load(backend);
        server.bind("127.0.0.1", port);
        InetSocketAddress addr = server.getLocalAddress();
        CountDownLatch stop = new CountDownLatch(1);
        // Handle TERM/INT ourselves so a clean stop exits 0 after the H2 file is flushed.
        for (String sig : new String[] {"TERM", "INT"}) {
            sun.misc.Signal.handle(new sun.misc.Signal(sig), s -> stop.countDown());
        }
        System.out.println("mongo-test-server listening on 127.0.0.1:" + addr.getPort()
            + (data == null ? " (memory backend)" : " (H2 backend: " + data + ")"));
        System.out.flush();
        stop.await();
        server.shutdownNow();
        backend.close();
        System.exit(0);
    }
}

/**
 * Change-stream history that can be lost on demand, and resume tokens checked before
 * mongo-java-server sees them.
 *
 * mongo-java-server stamps every oplog entry with a BSON timestamp (seconds since the epoch in
 * the high 32 bits, a counter in the low 32) and its resume tokens are {_data: hex of that
 * 64-bit value}; an event is after a position when its timestamp is greater (unsigned). So a
 * position is one unsigned long, and "the oplog rolled over at moment M" is a horizon H: every
 * position at or before H is gone.
 *
 * m2dForgetHistory (admin database only) sets H to the newest of: the newest oplog entry and
 * (now, 0), so that every event written before the command is at or before H and every event
 * written after it is after H. The oplog itself is left as it is (nothing is deleted: open
 * cursors, already past H, go on); only new aggregates are checked:
 *   - $changeStream with resumeAfter or startAfter a token at or before H, or
 *     startAtOperationTime at or before H (events from it up to H are gone):
 *     286 ChangeStreamHistoryLost with MongoDB's message;
 *   - a resume token that is not a document {_data: 1 to 16 hex digits}, as this server makes
 *     them: 260 InvalidResumeToken (checked whether or not history was forgotten);
 *   - a startAtOperationTime that is not a timestamp: 14 TypeMismatch.
 * H is kept in local.m2d.forgottenHistory, so with the H2 backend it survives a restart, as a
 * real oplog's loss would.
 */
final class ChangeStreamHistory {
    static final String COMMAND = "m2dForgetHistory";
    private static final String STORE = "m2d.forgottenHistory"; // in the "local" database
    private static final String OPLOG = "oplog.rs";             // ditto, mongo-java-server's

    static final String HISTORY_LOST_MESSAGE =
        "Resume of change stream was not possible, as the resume point may no longer be in the oplog.";

    /** Unsigned timestamp value at or before which history is gone; null: nothing forgotten. */
    private volatile Long horizon;

    /** Reads the horizon a previous run kept (H2 backend). */
    void load(MongoBackend backend) {
        MongoCollection<?> store = backend.resolveDatabase("local").resolveCollection(STORE, false);
        if (store == null) {
            return;
        }
        for (Document doc : store.queryAll()) {
            if (doc.get("forgottenThrough") instanceof BsonTimestamp ts) {
                horizon = ts.getValue();
            }
        }
    }

    Document handleCommand(MongoBackend backend, String db, String command, Document query,
                           Supplier<Document> next) {
        if (command.equalsIgnoreCase(COMMAND)) {
            if (!db.equals("admin")) {
                throw new MongoServerError(13, "Unauthorized",
                    COMMAND + " may only be run against the admin database.");
            }
            return forget(backend);
        }
        if (command.equalsIgnoreCase("aggregate")) {
            Document changeStream = changeStreamStage(query.get("pipeline"));
            if (changeStream != null) {
                check(changeStream);
            }
        }
        return next.get();
    }

    private synchronized Document forget(MongoBackend backend) {
        long h = new BsonTimestamp(Instant.now(backend.getClock()), 0).getValue();
        MongoDatabase local = backend.resolveDatabase("local");
        MongoCollection<?> oplog = local.resolveCollection(OPLOG, false);
        if (oplog != null) {
            for (Document entry : oplog.queryAll()) {
                if (entry.get("ts") instanceof BsonTimestamp ts && Long.compareUnsigned(ts.getValue(), h) > 0) {
                    h = ts.getValue();
                }
            }
        }
        Long previous = horizon;
        if (previous != null && Long.compareUnsigned(previous, h) > 0) {
            h = previous; // the clock went back: history already lost stays lost
        }
        MongoCollection<?> store = local.resolveCollection(STORE, false);
        if (store == null) {
            store = local.createCollectionOrThrowIfExists(STORE);
        }
        store.deleteDocuments(new Document(), 0);
        store.addDocument(new Document("_id", "horizon").append("forgottenThrough", new BsonTimestamp(h)));
        horizon = h;
        return new Document("forgottenThrough", new BsonTimestamp(h)).append("ok", 1.0);
    }

    /** The $changeStream spec when the pipeline's first stage is one, else null. */
    static Document changeStreamStage(Object pipeline) {
        if (pipeline instanceof List<?> stages && !stages.isEmpty()
            && stages.get(0) instanceof Document first
            && first.get("$changeStream") instanceof Document spec) {
            return spec;
        }
        return null;
    }

    private void check(Document spec) {
        Long h = horizon;
        for (String option : new String[] {"startAfter", "resumeAfter"}) {
            Object token = spec.get(option);
            if (token == null) {
                continue;
            }
            long position = parseToken(option, token);
            if (h != null && Long.compareUnsigned(position, h) <= 0) {
                throw historyLost();
            }
        }
        Object start = spec.get("startAtOperationTime");
        if (start != null) {
            if (!(start instanceof BsonTimestamp ts)) {
                throw new MongoServerError(14, "TypeMismatch",
                    "BSON field '$changeStream.startAtOperationTime' is the wrong type '"
                        + bsonTypeName(start) + "', expected type 'timestamp'");
            }
            // inclusive: the stream would start with the events at this very time
            if (h != null && Long.compareUnsigned(ts.getValue(), h) <= 0) {
                throw historyLost();
            }
        }
    }

    private static MongoServerError historyLost() {
        return new MongoServerError(286, "ChangeStreamHistoryLost", HISTORY_LOST_MESSAGE);
    }

    /** The position a token of this server names; 260 InvalidResumeToken for anything else. */
    static long parseToken(String option, Object token) {
        if (!(token instanceof Document doc)) {
            throw invalidToken("'" + option + "' must be a resume token document, got "
                + bsonTypeName(token));
        }
        if (!(doc.get("_data") instanceof String data)) {
            throw invalidToken("_data of missing or of wrong type. Expected string, got " + doc);
        }
        if (data.isEmpty() || data.length() > 16 || !data.chars().allMatch(c -> Character.digit(c, 16) >= 0)) {
            throw invalidToken("_data is not a resume token of this server (1 to 16 hex digits), got '"
                + data + "'");
        }
        long value = Long.parseUnsignedLong(data, 16);
        if (value < 0) { // mongo-java-server reads _data as a signed long
            throw invalidToken("_data is out of range, got '" + data + "'");
        }
        return value;
    }

    private static MongoServerError invalidToken(String what) {
        return new MongoServerError(260, "InvalidResumeToken", "Bad resume token: " + what);
    }

    private static String bsonTypeName(Object value) {
        if (value == null) return "null";
        if (value instanceof String) return "string";
        if (value instanceof Integer) return "int";
        if (value instanceof Long) return "long";
        if (value instanceof Double) return "double";
        if (value instanceof Boolean) return "bool";
        if (value instanceof Document) return "object";
        if (value instanceof List<?>) return "array";
        if (value instanceof Map<?, ?>) return "object";
        if (value instanceof Instant) return "date";
        if (value instanceof BsonTimestamp) return "timestamp";
        return value.getClass().getSimpleName();
    }
}

/**
 * postBatchResumeToken in the replies to a change stream's getMore, which mongo-java-server
 * leaves out.
 *
 * MongoDB (4.0.7 on) puts into every change-stream batch the token of the point the stream has
 * scanned the oplog to, also when nothing in the batch matched; drivers take it as the
 * stream's resume token after an empty batch, so a stream on a quiet collection resumes from a
 * recent point rather than from its last event, which the oplog may have dropped since (what
 * heartbeats store). Here:
 *   - a batch with events: the token of its last event (what the driver would take anyway);
 *   - an empty batch: the newest oplog entry (any namespace) that was there before the getMore
 *     ran and is at least 2 seconds older than the clock (an entry is stamped before it is
 *     added; an older one is certainly in place, so nothing before the token is left unseen),
 *     or the stream's position when that is newer.
 * The position is known from the stream's start (resumeAfter, startAfter, startAtOperationTime)
 * or its last event; a stream opened without a start point gets tokens only after its first
 * event. The aggregate's own reply is left as it is.
 */
final class PostBatchResumeTokens {
    private static final String OPLOG = "oplog.rs"; // in the "local" database
    private static final String TOKEN = "postBatchResumeToken";

    /** Change-stream cursor id -> the position (unsigned timestamp value) reported to it. */
    private final Map<Long, Long> positions = new ConcurrentHashMap<>();

    Document handleCommand(MongoBackend backend, String command, Document query, Supplier<Document> next) {
        if (command.equalsIgnoreCase("aggregate")) {
            Document spec = ChangeStreamHistory.changeStreamStage(query.get("pipeline"));
            Document reply = next.get();
            if (spec != null && reply.get("cursor") instanceof Document cursor
                && cursor.get("id") instanceof Number id && id.longValue() != 0) {
                Long position = lastEvent(cursor.get("firstBatch"));
                if (position == null) {
                    position = start(spec);
                }
                if (position != null) {
                    positions.put(id.longValue(), position);
                }
            }
            return reply;
        }
        if (command.equalsIgnoreCase("getMore") && query.get("getMore") instanceof Number id
            && positions.containsKey(id.longValue())) {
            long scanned = settledOplogEnd(backend); // before the getMore, so it saw all of these
            Document reply = next.get();
            if (reply.get("cursor") instanceof Document cursor) {
                Long last = lastEvent(cursor.get("nextBatch"));
                long position = positions.get(id.longValue());
                if (last != null) {
                    position = last;
                } else if (Long.compareUnsigned(scanned, position) > 0) {
                    position = scanned;
                }
                cursor.put(TOKEN, new Document("_data", Long.toHexString(position)));
                if (cursor.get("id") instanceof Number left && left.longValue() == 0) {
                    positions.remove(id.longValue());
                } else {
                    positions.put(id.longValue(), position);
                }
            }
            return reply;
        }
        if (command.equalsIgnoreCase("killCursors") && query.get("cursors") instanceof List<?> ids) {
            for (Object id : ids) {
                if (id instanceof Number n) {
                    positions.remove(n.longValue());
                }
            }
        }
        return next.get();
    }

    /** The position a stream starts after; null when it has no start point. */
    private static Long start(Document spec) {
        for (String option : new String[] {"startAfter", "resumeAfter"}) {
            Object token = spec.get(option);
            if (token != null) {
                return ChangeStreamHistory.parseToken(option, token);
            }
        }
        if (spec.get("startAtOperationTime") instanceof BsonTimestamp ts && ts.getValue() != 0) {
            return ts.getValue() - 1; // inclusive: the stream is after the moment before it
        }
        return null;
    }

    /** The position of the last event of a batch, null for an empty one. */
    private static Long lastEvent(Object batch) {
        if (batch instanceof List<?> events && !events.isEmpty()
            && events.get(events.size() - 1) instanceof Document event
            && event.get("_id") instanceof Document token && token.get("_data") instanceof String data) {
            return Long.parseUnsignedLong(data, 16);
        }
        return null;
    }

    /** The newest oplog entry at least 2 seconds older than the clock (0 when none). */
    private static long settledOplogEnd(MongoBackend backend) {
        long bound = new BsonTimestamp(Instant.now(backend.getClock()).minusSeconds(2), 0).getValue() | 0xffffffffL;
        long newest = 0;
        MongoCollection<?> oplog = backend.resolveDatabase("local").resolveCollection(OPLOG, false);
        if (oplog != null) {
            for (Document entry : oplog.queryAll()) {
                if (entry.get("ts") instanceof BsonTimestamp ts && Long.compareUnsigned(ts.getValue(), bound) <= 0
                    && Long.compareUnsigned(ts.getValue(), newest) > 0) {
                    newest = ts.getValue();
                }
            }
        }
        return newest;
    }
}
