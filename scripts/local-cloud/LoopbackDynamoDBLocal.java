import java.lang.reflect.Field;

/**
 * Starts DynamoDB Local with its HTTP connector bound to 127.0.0.1: DynamoDB Local has no option for
 * the address and listens on every interface otherwise. Compiled by the guard
 * (dynamodb-emulator-process.ts) and run as `java -cp DynamoDBLocal.jar:CLASSES LoopbackDynamoDBLocal
 * -port N ...`, with DynamoDB Local's own arguments. Everything is looked up by reflection, so the
 * file compiles against nothing.
 */
public class LoopbackDynamoDBLocal {
  public static void main(String[] args) throws Exception {
    Class<?> runner = Class.forName("software.amazon.dynamodb.services.local.main.ServerRunner");
    // DynamoDBProxyServer: wraps a Jetty Server (private field `server`) built with one connector.
    Object proxy = runner.getMethod("createServerFromCommandLineArgs", String[].class).invoke(null, (Object) args);
    Field serverField = proxy.getClass().getDeclaredField("server");
    serverField.setAccessible(true);
    Object server = serverField.get(proxy);
    Object[] connectors = (Object[]) server.getClass().getMethod("getConnectors").invoke(server);
    if (connectors.length == 0) throw new IllegalStateException("DynamoDB Local has no HTTP connector to bind");
    for (Object connector : connectors) {
      connector.getClass().getMethod("setHost", String.class).invoke(connector, "127.0.0.1");
    }
    proxy.getClass().getMethod("start").invoke(proxy);
  }
}
