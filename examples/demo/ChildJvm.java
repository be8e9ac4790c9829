// SPDX-License-Identifier: Apache-2.0
package demo;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Runs a class of this demo in a child JVM (same java, same class path) and tells how the child
 * ended: its exit code, the signal that killed it, the JVM's fatal error report. What a child
 * does to its allocator cannot harm the demo's own JVM.
 */
final class ChildJvm {
    /** How a child ended: its exit code and everything it printed (stdout and stderr). */
    record Result(int exitCode, boolean timedOut, List<String> output, Path errorFile) {
        /** Lines the child printed that start with {@code prefix}, the prefix removed. */
        List<String> lines(String prefix) {
            List<String> found = new ArrayList<>();
            for (String line : output) {
                if (line.startsWith(prefix)) found.add(line.substring(prefix.length()));
            }
            return found;
        }

        /** How the child ended, in one line: "exit 0", or the signal and what the JVM or libc said. */
        String ending() {
            if (timedOut) return "hung, killed after " + TIMEOUT_SECONDS + " s";
            // Process.exitValue() is 128 + the signal for a child killed by a signal.
            String how = exitCode > 128 ? "killed by " + signalName(exitCode - 128) : "exit " + exitCode;
            String why = fatalErrorSummary();
            return why.isEmpty() ? how : how + " (" + why + ")";
        }

        /**
         * The JVM's own report when it crashed (the signal it caught and the frame it was in), or
         * the last line libc printed before it aborted the process.
         */
        private String fatalErrorSummary() {
            String signal = null;
            String frame = null;
            for (int i = 0; i < output.size(); i++) {
                String line = output.get(i).strip();
                if (signal == null && line.matches("#\\s+SIG[A-Z]+ \\(0x\\p{XDigit}+\\).*")) {
                    signal = line.substring(1).strip().replaceFirst(" at pc=.*", "");
                }
                if (frame == null && line.equals("# Problematic frame:") && i + 1 < output.size()) {
                    frame = output.get(i + 1).substring(1).strip().replaceAll("\\s+", " ");
                }
            }
            if (signal != null) {
                return "the JVM caught " + signal + (frame == null ? "" : " in " + frame)
                    + "; report in " + errorFile;
            }
            for (int i = output.size() - 1; i >= 0; i--) {
                String line = output.get(i).strip();
                if (!line.isEmpty() && !line.startsWith(RESULT)) return "libc: " + line;
            }
            return "";
        }
    }

    /** Lines a child prints for its parent start with this. */
    static final String RESULT = "RESULT ";
    static final int TIMEOUT_SECONDS = 60;

    private ChildJvm() {}

    /**
     * Runs {@code mainClass} with {@code args} in a child JVM with {@code jvmOptions}, its fatal
     * error report (if any) written under {@code workDir}. A crash ends as it would in production
     * (abort, SIGABRT), only without the core dump.
     */
    static Result run(Path workDir, List<String> jvmOptions, Map<String, String> env,
            Class<?> mainClass, String... args) throws IOException, InterruptedException {
        Files.createDirectories(workDir);
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> command = new ArrayList<>(List.of("sh", "-c", "ulimit -c 0 && exec \"$@\"", "sh",
                java, "-XX:ErrorFile=" + workDir + "/hs_err_pid%p.log",
                "-cp", System.getProperty("java.class.path")));
        command.addAll(jvmOptions);
        command.add(mainClass.getName());
        command.addAll(List.of(args));
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        builder.environment().putAll(env);
        // glibc reports heap corruption on standard error, not on the terminal.
        builder.environment().put("LIBC_FATAL_STDERR_", "1");
        Process process = builder.start();
        process.getOutputStream().close();
        // Read the output in the background: a child that hangs must not hang the demo.
        List<String> output = new ArrayList<>();
        Thread reader = new Thread(() -> {
            try {
                String text = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                synchronized (output) {
                    output.addAll(text.lines().toList());
                }
            } catch (IOException e) {
                synchronized (output) {
                    output.add("(output lost: " + e + ")");
                }
            }
        });
        reader.start();
        boolean finished = process.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        if (!finished) process.destroyForcibly().waitFor();
        reader.join();
        Path errorFile = workDir.resolve("hs_err_pid" + process.pid() + ".log");
        synchronized (output) {
            return new Result(finished ? process.exitValue() : -1, !finished, List.copyOf(output),
                Files.exists(errorFile) ? errorFile : null);
        }
    }

    private static String signalName(int signal) {
        return switch (signal) {
            case 4 -> "SIGILL";
            case 6 -> "SIGABRT";
            case 7 -> "SIGBUS";
            case 8 -> "SIGFPE";
            case 9 -> "SIGKILL";
            case 11 -> "SIGSEGV";
            default -> "signal " + signal;
        };
    }
}
