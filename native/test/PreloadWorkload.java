// SPDX-License-Identifier: Apache-2.0
/*
 * The Java workload of shim-jvm (preload-programs.sh --jvm): a JVM whose own malloc is
 * segfit's (the LD_PRELOAD shim) must print exactly what it prints on glibc malloc.
 *
 * Four threads each do what a service's JVM does to native memory: collections and strings
 * (garbage for the GC, whose threads malloc), BigInteger arithmetic, zlib compression and back
 * (Deflater/Inflater: native buffers), direct ByteBuffers (Unsafe.allocateMemory: malloc), and
 * segfit itself through JNI (libsegfit.so loaded with -Dsegfit.library.path: a second copy of
 * the core inside a process already running on the shim's). Each thread prints the SHA-256 of
 * everything it computed; the JIT compiles all of it on its own threads meanwhile. Run as a
 * source file (java PreloadWorkload.java), so the in-memory compilation runs on the shim too.
 */
import io.segfit.Heap;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.zip.Deflater;
import java.util.zip.Inflater;

public class PreloadWorkload {
  static final int THREADS = 4;

  public static void main(String[] args) throws Exception {
    String[] result = new String[THREADS];
    Throwable[] failure = new Throwable[THREADS];
    Thread[] threads = new Thread[THREADS];
    for (int t = 0; t < THREADS; t++) {
      int id = t;
      threads[t] = new Thread(() -> {
        try {
          result[id] = work(id);
        } catch (Throwable e) {
          failure[id] = e;
        }
      });
      threads[t].start();
    }
    for (Thread t : threads) {
      t.join();
    }
    for (int t = 0; t < THREADS; t++) {
      if (failure[t] != null) {
        throw new AssertionError("thread " + t, failure[t]);
      }
      System.out.println("thread " + t + ": " + result[t]);
    }
  }

  static String work(int id) throws Exception {
    MessageDigest md = MessageDigest.getInstance("SHA-256");
    SplittableRandom r = new SplittableRandom(1234 + id);
    for (int round = 0; round < 4; round++) {
      // Collections and strings: garbage for the GC.
      Map<String, List<Integer>> map = new HashMap<>();
      for (int i = 0; i < 60_000; i++) {
        map.computeIfAbsent("k" + r.nextInt(20_000), k -> new ArrayList<>()).add(i);
      }
      TreeMap<String, Integer> sorted = new TreeMap<>();
      map.forEach((k, v) -> sorted.put(k, v.size()));
      StringBuilder sb = new StringBuilder();
      sorted.forEach((k, v) -> sb.append(k).append('=').append(v).append(';'));
      md.update(sb.toString().getBytes(StandardCharsets.UTF_8));
      // Arithmetic.
      BigInteger f = BigInteger.ONE;
      for (int i = 2; i < 1500 + id * 100; i++) {
        f = f.multiply(BigInteger.valueOf(i));
      }
      md.update(f.toByteArray());
      // zlib: compressed and back.
      byte[] data = new byte[1 << 20];
      for (int i = 0; i < data.length; i++) {
        data[i] = (byte) (r.nextInt(16) + (i >> 12));
      }
      Deflater d = new Deflater(6);
      d.setInput(data);
      d.finish();
      byte[] z = new byte[data.length + 1024];
      int zn = d.deflate(z);
      d.end();
      Inflater inf = new Inflater();
      inf.setInput(z, 0, zn);
      byte[] back = new byte[data.length];
      int bn = inf.inflate(back);
      inf.end();
      if (bn != data.length || !java.util.Arrays.equals(back, data)) {
        throw new AssertionError("zlib round trip");
      }
      md.update(z, 0, zn);
      // Direct buffers: malloc through Unsafe.
      for (int i = 0; i < 64; i++) {
        ByteBuffer b = ByteBuffer.allocateDirect(1 + r.nextInt(128 << 10));
        while (b.hasRemaining()) {
          b.put((byte) (b.position() * 31 + i));
        }
        b.flip();
        md.update(b);
      }
      // segfit through JNI.
      try (Heap heap = Heap.builder().name("preload-" + id).build()) {
        List<ByteBuffer> blocks = new ArrayList<>();
        for (int i = 0; i < 5000; i++) {
          ByteBuffer b = heap.allocate(1 + r.nextInt(i % 50 == 0 ? 3 << 20 : 4096));
          b.put(0, (byte) i).put(b.capacity() - 1, (byte) (i >> 3));
          blocks.add(b);
        }
        for (int i = 0; i < blocks.size(); i += 3) {
          ByteBuffer b = heap.reallocate(blocks.get(i), 1 + r.nextInt(8192));
          b.put(b.capacity() - 1, (byte) i);
          blocks.set(i, b);
        }
        for (ByteBuffer b : blocks) {
          md.update(b.get(0));
          md.update(b.get(b.capacity() - 1));
          heap.free(b);
        }
        if (heap.stats().liveBlocks() != 0) {
          throw new AssertionError("segfit blocks left live");
        }
      }
    }
    StringBuilder hex = new StringBuilder();
    for (byte b : md.digest()) {
      hex.append(String.format("%02x", b));
    }
    return hex.toString();
  }
}
