// java.net.URI backend for the differential suite, in the JDK's own
// com.sun.net.httpserver (which builds the request URI with new URI(target)).
// Two readings per request:
//   java-uri-path      getPath() (the whole path decoded once), split on '/';
//   java-uri-rawpath   getRawPath() split on '/', then each segment decoded
//                      (strict UTF-8: a segment that does not decode is refused).
// Answers 200 {"readings": {...}}; a target URI refuses is the server's 400.
// Prints `listening on 127.0.0.1:PORT`.

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;

public class JavaUriBackend {
    public static void main(String[] args) throws IOException {
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 64);
        server.createContext("/", JavaUriBackend::handle);
        server.setExecutor(Executors.newFixedThreadPool(4));
        server.start();
        System.out.println("listening on 127.0.0.1:" + server.getAddress().getPort());
        System.out.flush();
    }

    static void handle(HttpExchange ex) throws IOException {
        URI uri = ex.getRequestURI();
        StringBuilder out = new StringBuilder("{\"readings\": {");
        out.append("\"java-uri-path\": ").append(reading(split(uri.getPath()), null));
        String err = null;
        List<String> perSegment = new ArrayList<>();
        for (String raw : split(uri.getRawPath())) {
            try {
                perSegment.add(percentDecode(raw));
            } catch (IllegalArgumentException | CharacterCodingException e) {
                err = "segment " + raw + " does not decode: " + e;
                break;
            }
        }
        out.append(", \"java-uri-rawpath\": ").append(reading(perSegment, err));
        out.append("}}\n");
        byte[] body = out.toString().getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(200, body.length);
        try (OutputStream os = ex.getResponseBody()) {
            os.write(body);
        }
    }

    static List<String> split(String path) {
        List<String> segs = new ArrayList<>();
        if (path == null || path.isEmpty() || path.equals("/")) {
            return segs;
        }
        // split(-1) keeps a trailing empty segment; the first element is the
        // empty string before the leading '/'.
        String[] parts = path.split("/", -1);
        for (int i = 1; i < parts.length; i++) {
            segs.add(parts[i]);
        }
        if (!path.startsWith("/")) {
            segs.add(0, parts[0]);
        }
        return segs;
    }

    static String percentDecode(String s) throws CharacterCodingException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '%') {
                if (i + 2 >= s.length()) throw new IllegalArgumentException("truncated escape");
                int hi = Character.digit(s.charAt(i + 1), 16), lo = Character.digit(s.charAt(i + 2), 16);
                if (hi < 0 || lo < 0) throw new IllegalArgumentException("bad escape");
                bytes.write(hi * 16 + lo);
                i += 2;
            } else {
                byte[] b = String.valueOf(c).getBytes(StandardCharsets.UTF_8);
                bytes.write(b, 0, b.length);
            }
        }
        return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes.toByteArray()))
                .toString();
    }

    static String reading(List<String> segments, String error) {
        if (error != null) return "{\"error\": " + Json.str(error) + "}";
        StringBuilder b = new StringBuilder("{\"segments\": [");
        for (int i = 0; i < segments.size(); i++) {
            if (i > 0) b.append(", ");
            b.append(Json.str(segments.get(i)));
        }
        return b.append("]}").toString();
    }
}
