package musicbud;

import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.graphdb.Transaction;

/**
 * Runs Neo4j Community as an embedded DBMS with only the Bolt connector enabled, on loopback,
 * with authentication on. The password for the "neo4j" user comes from the environment
 * (NEO4J_PASSWORD); it is set on first start and checked on later starts.
 *
 * Usage: java -cp ... musicbud.Neo4jLauncher DATA_DIR PORT
 * Prints "NEO4J_READY bolt://127.0.0.1:PORT" once Bolt is accepting connections; stops cleanly on SIGTERM.
 */
public final class Neo4jLauncher {
    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: Neo4jLauncher DATA_DIR PORT");
            System.exit(2);
        }
        String password = System.getenv("NEO4J_PASSWORD");
        if (password == null || password.length() < 8 || password.equals("neo4j")) {
            System.err.println("NEO4J_PASSWORD must be set to a password of at least 8 characters (not 'neo4j')");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        int port = Integer.parseInt(args[1]);
        String pageCache = System.getenv().getOrDefault("NEO4J_PAGECACHE", "512m");

        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(home)
                .setConfig(GraphDatabaseSettings.auth_enabled, true)
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
                .setConfig(BoltConnector.advertised_address, new SocketAddress("127.0.0.1", port))
                .setConfig(HttpConnector.enabled, false)
                .setConfig(GraphDatabaseSettings.pagecache_memory, org.neo4j.io.ByteUnit.parse(pageCache))
                .setConfig(GraphDatabaseSettings.transaction_timeout, Duration.ofMinutes(10))
                .build();

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("NEO4J_STOPPING");
            dbms.shutdown();
            System.out.println("NEO4J_STOPPED");
            System.out.flush();
            stopped.countDown();
        }));

        setPassword(dbms, password);
        System.out.println("NEO4J_READY bolt://127.0.0.1:" + port);
        System.out.flush();
        stopped.await();
    }

    /** Sets the neo4j user's password on first start (the default one must be changed). */
    private static void setPassword(DatabaseManagementService dbms, String password) {
        GraphDatabaseService system = dbms.database("system");
        try (Transaction tx = system.beginTx()) {
            var result = tx.execute("SHOW USERS YIELD user, passwordChangeRequired WHERE user = 'neo4j' "
                    + "RETURN passwordChangeRequired");
            boolean mustChange = result.hasNext() && (Boolean) result.next().get("passwordChangeRequired");
            result.close();
            tx.commit();
            if (!mustChange) {
                return;
            }
        }
        try (Transaction tx = system.beginTx()) {
            tx.execute("ALTER USER neo4j SET PLAINTEXT PASSWORD $pw CHANGE NOT REQUIRED",
                    java.util.Map.of("pw", password)).close();
            tx.commit();
        }
    }
}
