// SPDX-License-Identifier: Apache-2.0
/*
 * A Netty HTTP/1.1 server whose every buffer comes from one allocator, named on the command line:
 * "segfit" (SegfitByteBufAllocator over segfit's default heap), "pooled" (Netty's
 * PooledByteBufAllocator.DEFAULT) or "adaptive" (Netty 4.2's AdaptiveByteBufAllocator, its
 * default). GET /bytes?n=N answers N bytes, built in a direct buffer of that allocator as a
 * service builds a payload; GET /stats answers the allocator's metric() (used direct and heap
 * memory) and, for segfit, its heap's committed bytes. Prints "listening on <port>" once bound. Usage: Server <allocator> <port>
 */
package nettyserver;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.AdaptiveByteBufAllocator;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.ByteBufAllocatorMetric;
import io.netty.buffer.ByteBufAllocatorMetricProvider;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.QueryStringDecoder;
import io.segfit.Heap;
import io.segfit.netty.SegfitByteBufAllocator;
import io.segfit.netty.SegfitByteBufAllocatorMetric;
import java.nio.charset.StandardCharsets;
import java.util.List;

public final class Server {
  /** Largest body served: the load generator asks for at most 8 MiB. */
  static final int MAX_BODY = 16 << 20;
  /** What bodies are made of; the load generator checks the first bytes of each. */
  static final byte[] PATTERN = pattern();

  private Server() {}

  public static void main(String[] args) throws InterruptedException {
    if (args.length != 2) {
      System.err.println("usage: Server <segfit|pooled|adaptive> <port>");
      System.exit(2);
    }
    ByteBufAllocator alloc = allocator(args[0]);
    int port = Integer.parseInt(args[1]);
    EventLoopGroup boss = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
    EventLoopGroup workers = new MultiThreadIoEventLoopGroup(2, NioIoHandler.newFactory());
    try {
      Channel server = new ServerBootstrap()
          .group(boss, workers)
          .channel(NioServerSocketChannel.class)
          .option(ChannelOption.ALLOCATOR, alloc)
          .childOption(ChannelOption.ALLOCATOR, alloc)   // the one line a user adds
          .childOption(ChannelOption.TCP_NODELAY, true)
          .childHandler(new ChannelInitializer<SocketChannel>() {
            @Override
            protected void initChannel(SocketChannel ch) {
              ch.pipeline().addLast(new HttpServerCodec(), new HttpObjectAggregator(64 << 10),
                  new Handler(alloc));
            }
          })
          .bind("127.0.0.1", port).sync().channel();
      System.out.println("listening on " + port + " with " + alloc);
      System.out.flush();
      server.closeFuture().sync();
    } finally {
      boss.shutdownGracefully();
      workers.shutdownGracefully();
    }
  }

  static ByteBufAllocator allocator(String name) {
    return switch (name) {
      case "segfit" -> new SegfitByteBufAllocator(Heap.defaultHeap());
      case "pooled" -> PooledByteBufAllocator.DEFAULT;
      case "adaptive" -> new AdaptiveByteBufAllocator();
      default -> throw new IllegalArgumentException("unknown allocator '" + name
          + "': segfit, pooled or adaptive");
    };
  }

  private static byte[] pattern() {
    byte[] p = new byte[64 << 10];
    for (int i = 0; i < p.length; i++) p[i] = (byte) ('a' + i % 26);
    return p;
  }

  private static final class Handler extends SimpleChannelInboundHandler<FullHttpRequest> {
    private final ByteBufAllocatorMetric metric;

    Handler(ByteBufAllocator alloc) {
      this.metric = ((ByteBufAllocatorMetricProvider) alloc).metric();
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest request) {
      QueryStringDecoder uri = new QueryStringDecoder(request.uri());
      FullHttpResponse response;
      if (uri.path().equals("/bytes")) {
        List<String> n = uri.parameters().get("n");
        int size = n == null ? -1 : Integer.parseInt(n.get(0));
        if (size < 0 || size > MAX_BODY) {
          response = text(ctx, HttpResponseStatus.BAD_REQUEST, "n must be in [0, " + MAX_BODY + "]");
        } else {
          ByteBuf body = ctx.alloc().directBuffer(size);
          while (body.writerIndex() < size) {
            body.writeBytes(PATTERN, 0, Math.min(PATTERN.length, size - body.writerIndex()));
          }
          response = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK, body);
        }
      } else if (uri.path().equals("/stats")) {
        // segfit's own view beside Netty's: the bytes its heap holds committed (-1 for Netty's)
        long committed = metric instanceof SegfitByteBufAllocatorMetric m
            ? m.heapStats().committedBytes() : -1;
        response = text(ctx, HttpResponseStatus.OK,
            metric.usedDirectMemory() + " " + metric.usedHeapMemory() + " " + committed);
      } else {
        response = text(ctx, HttpResponseStatus.NOT_FOUND, "GET /bytes?n=N or /stats");
      }
      HttpUtil.setContentLength(response, response.content().readableBytes());
      boolean keepAlive = HttpUtil.isKeepAlive(request);
      HttpUtil.setKeepAlive(response, keepAlive);
      response.headers().set(HttpHeaderNames.CONTENT_TYPE, "application/octet-stream");
      if (keepAlive) {
        ctx.writeAndFlush(response);
      } else {
        ctx.writeAndFlush(response).addListener(ChannelFutureListener.CLOSE);
      }
    }

    private static FullHttpResponse text(ChannelHandlerContext ctx, HttpResponseStatus status,
        String text) {
      ByteBuf body = ctx.alloc().buffer();
      body.writeCharSequence(text, StandardCharsets.US_ASCII);
      return new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status, body);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      System.err.println("server: " + cause);
      ctx.close();
    }
  }
}
