// Tomcat (Debian's tomcat10-embed, a real servlet container) for the
// differential suite: one servlet mapped to "/*"; the reading `tomcat` is
// getPathInfo() split on '/', i.e. the path the container maps servlets on
// (and Spring Security and most filters authorise on): ';' path parameters
// removed from every segment, decoded once, normalised. Default connector
// settings: what Tomcat refuses (%2F, %5C, odd characters) is its own 400.
// Prints `listening on 127.0.0.1:PORT`.

import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.apache.catalina.Context;
import org.apache.catalina.Wrapper;
import org.apache.catalina.connector.Connector;
import org.apache.catalina.startup.Tomcat;

public class TomcatBackend {
    // Held so the level set on it is not lost when the logger is collected.
    static final Logger QUIET = Logger.getLogger("org.apache");

    public static void main(String[] args) throws Exception {
        QUIET.setLevel(Level.SEVERE);
        Tomcat tomcat = new Tomcat();
        tomcat.setBaseDir(Files.createTempDirectory("differential-tomcat").toString());
        Connector connector = new Connector();
        connector.setPort(0);
        connector.setProperty("address", "127.0.0.1");
        tomcat.getService().addConnector(connector);
        tomcat.setConnector(connector);
        Context ctx = tomcat.addContext("", null);
        Wrapper wrapper = Tomcat.addServlet(ctx, "reading", new HttpServlet() {
            @Override
            protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
                String info = req.getPathInfo();
                StringBuilder b = new StringBuilder("{\"readings\": {\"tomcat\": {\"segments\": [");
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
        });
        wrapper.addMapping("/*");
        tomcat.start();
        System.out.println("listening on 127.0.0.1:" + connector.getLocalPort());
        System.out.flush();
        tomcat.getServer().await();
    }
}
