// A Java server as Netty 3.5 and countless others built it: `new ServerSocket(port)`, whose
// backlog is Java's default, 50, and one thread that accepts and serves each connection in turn
// (WORK_MS of work each), so the accept queue is drained at 1000 / WORK_MS connections a second.
// BACKLOG=1024 is the seed's fix. Run with the JDK's source launcher: java SlowAccept.java PORT HOST
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;

public class SlowAccept {
    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        InetAddress host = InetAddress.getByName(args[1]);
        String backlog = System.getenv("BACKLOG");
        long workMs = Long.parseLong(System.getenv().getOrDefault("WORK_MS", "5"));
        // A backlog of 0 means Java's default: 50, as `new ServerSocket(port)` passes.
        ServerSocket server = new ServerSocket(port, backlog == null ? 0 : Integer.parseInt(backlog), host);
        byte[] answer = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n".getBytes();
        byte[] request = new byte[4096];
        while (true) {
            try (Socket c = server.accept()) {
                c.getInputStream().read(request);
                Thread.sleep(workMs);
                OutputStream out = c.getOutputStream();
                out.write(answer);
            }
        }
    }
}
