// Jetty 9.4 (Debian's libjetty9-java, a second real servlet container) for
// the differential suite: one servlet mapped to "/*"; the reading `jetty` is
// getPathInfo() split on '/', the path the container maps servlets on (';'
// path parameters removed from every segment, decoded once, normalised).
// Default HttpConfiguration and compliance modes: what Jetty refuses is its
// own 400. Prints `listening on 127.0.0.1:PORT`.

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import javax.servlet.http.HttpServlet;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.servlet.ServletContextHandler;
import org.eclipse.jetty.servlet.ServletHolder;

public class JettyBackend {
    public static void main(String[] args) throws Exception {
        // Jetty's own logging to stderr (the harness keeps it in jetty.log), warnings only.
        System.setProperty("org.eclipse.jetty.util.log.class", "org.eclipse.jetty.util.log.StdErrLog");
        System.setProperty("org.eclipse.jetty.LEVEL", "WARN");
        Server server = new Server();
        ServerConnector connector = new ServerConnector(server);
        connector.setHost("127.0.0.1");
        connector.setPort(0);
        server.addConnector(connector);
        ServletContextHandler ctx = new ServletContextHandler(ServletContextHandler.NO_SESSIONS);
        ctx.setContextPath("/");
        ctx.addServlet(new ServletHolder(new HttpServlet() {
            @Override
            protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
                String info = req.getPathInfo();
                StringBuilder b = new StringBuilder("{\"readings\": {\"jetty\": {\"segments\": [");
                if (info != null && !info.equals("/")) {
                    String[] parts = info.split("/", -1);
                    for (int i = 1; i < parts.length; i++) {
                        if (i > 1) b.append(", ");
                        b.append(Json.str(parts[i]));
                    }
                }
                b.append("]}}}\n");
                byte[] body = b.toString().getBytes(StandardCharsets.UTF_8);
                resp.setStatus(200);
                resp.setContentType("application/json");
                resp.setContentLength(body.length);
                resp.getOutputStream().write(body);
            }
        }), "/*");
        server.setHandler(ctx);
        server.start();
        System.out.println("listening on 127.0.0.1:" + connector.getLocalPort());
        System.out.flush();
        server.join();
    }
}
