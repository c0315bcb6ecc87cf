// Starts mongo-java-server on 127.0.0.1 with the oplog enabled, so change streams work.
// Run through scripts/mongo-test-server, which puts the jars on the class path.
//   --port PORT    port to bind (0 picks a free one; the line printed says which)
//   --data FILE    H2 file backend: data and oplog survive a restart
// Prints one line "mongo-test-server listening on 127.0.0.1:PORT ..." once it accepts
// connections, and closes the server (flushing the H2 file) on SIGTERM or SIGINT.
import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import java.net.InetSocketAddress;
import java.util.concurrent.CountDownLatch;

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
        MongoBackend backend = data == null ? new MemoryBackend() : new H2Backend(data);
        MongoServer server = new MongoServer(backend);
        server.enableOplog();
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
