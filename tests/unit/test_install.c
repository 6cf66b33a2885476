/* SPDX-License-Identifier: MIT */
/*
 * What ships: `make install` into a scratch DESTDIR gives exactly the expected tree, a program
 * built against it with pkg-config links (shared and static) and runs, `make uninstall` takes
 * it all away; the man pages render cleanly and name every flag, key, command and function;
 * `make deb` builds the three packages with the expected files, lintian-clean of errors.
 * The install tests reuse the build under test (FERRY_BUILD) and never compile ferry again;
 * make deb does, once, with Debian's flags, as a package build must.
 */
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "ferryd_proc.h"

#define OUT_MAX 65536

static char src[1024];	  /* the source tree: the tests run from its top */
static char build[1024]; /* FERRY_BUILD, absolute */
static char tmp[64];	     /* this test's scratch directory */
static char out[OUT_MAX];

/* Runs a shell command (stdout in out; the commands add 2>&1 where stderr matters): its exit status. */
#define sh(...) ferry_test_capture(out, sizeof(out), __VA_ARGS__)

/* The last len bytes of out: what a failed make or dpkg-buildpackage said last. */
static const char *tail(size_t len)
{
	size_t n = strlen(out);

	return n > len ? out + n - len : out;
}

/*
 * make in the source tree on FERRY_BUILD, without the MAKEFLAGS of a make that runs the tests
 * (its jobserver's fds are not ours, its O= may not be FERRY_BUILD). SANITIZE stays in the
 * environment: the build under test was made with it.
 */
#define MAKE "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -C '%s' O='%s'"

static void setup(void)
{
	const char *b = getenv("FERRY_BUILD");
	char path[PATH_MAX];

	cr_assert_not_null(getcwd(src, sizeof(src)), "expected the current directory");
	cr_assert_eq(access("Makefile", R_OK) | access("debian/control", R_OK) | access("man/ferryd.8", R_OK), 0,
		     "expected to run from the top of ferry's source tree (Makefile, debian/, man/), not %s", src);
	cr_assert(realpath(b && *b ? b : "build", path) && strlen(path) < sizeof(build), "expected the build directory %s (set FERRY_BUILD)",
			   b && *b ? b : "build");
	snprintf(build, sizeof(build), "%s", path);
	tmp[0] = '\0';
}

/*
 * The test's scratch directory, made once it is sure to run: Criterion runs no .fini after a
 * failed .init or a skip, so one made before would stay in /tmp.
 */
static void scratch(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/ferryt-install-%d-XXXXXX", (int)getpid());
	cr_assert_not_null(mkdtemp(tmp), "expected a scratch directory: %s", strerror(errno));
}

/* install must not rebuild: the other tests are running the binaries of this build */
static void setup_install(void)
{
	setup();
	cr_assert_eq(sh(MAKE " -q daemon 2>&1", src, build), 0,
		     "expected an up-to-date build in %s (run make O=%s first): installing must not rebuild it", build,
		     build);
}

static void teardown(void)
{
	if (tmp[0])
		sh("rm -rf '%s'", tmp); /* a directory left in /tmp fails nothing */
}

static bool exists(const char *path)
{
	struct stat st;

	return !lstat(path, &st);
}

static void assert_file_has(const char *path, const char *what)
{
	cr_assert_eq(sh("grep -qxF -- '%s' '%s'", what, path), 0, "expected the line '%s' in %s", what, path);
}

/* The public headers, as the tree has them: "client.h\ncommon.h\n..." */
static void headers(char *list, size_t len, const char *prefix)
{
	glob_t g;
	size_t n = 0;

	list[0] = '\0';
	cr_assert_eq(glob("libclient/include/ferry/*.h", 0, NULL, &g), 0, "expected the public headers");
	for (size_t i = 0; i < g.gl_pathc; i++)
		n += (size_t)snprintf(list + n, len - n, "%s%s\n", prefix, strrchr(g.gl_pathv[i], '/') + 1);
	globfree(&g);
}

/* Every file (not directory) under root, sorted, one a line, relative to root. */
static const char *files_under(const char *root)
{
	cr_assert_eq(sh("cd '%s' && find . ! -type d | sed 's|^\\./||' | LC_ALL=C sort", root), 0,
		     "expected to list %s", root);
	return out;
}

static void assert_tree(const char *root, const char *expected_unsorted)
{
	static char want[OUT_MAX], got[OUT_MAX];
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/expected", tmp);
	f = fopen(path, "w");
	cr_assert_not_null(f, "expected to write %s", path);
	fputs(expected_unsorted, f);
	fclose(f);
	cr_assert_eq(sh("LC_ALL=C sort '%s'", path), 0, "expected to sort %s", path);
	snprintf(want, sizeof(want), "%s", out);
	snprintf(got, sizeof(got), "%s", files_under(root));
	cr_assert_str_eq(got, want, "expected exactly these files under %s:\n%s\ngot:\n%s", root, want, got);
}

static void sanitizer_flags(char *flags, size_t len)
{
	const char *s = getenv("SANITIZE");

	if (!s || !*s)
		flags[0] = '\0';
	else
		snprintf(flags, len, "%s", !strcmp(s, "thread") ? "-fsanitize=thread" : "-fsanitize=address,undefined");
}

/*
 * A consumer built the way its README says, with the pkg-config file of the tree at root
 * (PKG_CONFIG_SYSROOT_DIR: the file names the installed paths; PKG_CONFIG_LIBDIR: no other
 * libferry.pc is found), linked against the shared library and against the static one, and
 * run: the first must load root's libferry.so.0, the second must need none.
 */
static void assert_consumer_runs(const char *root, const char *libdir)
{
	static const char prog[] =
		"#include <stdio.h>\n"
		"#include <ferry/iobuf.h>\n"
		"#include <ferry/udp.h>\n"
		"int main(void)\n"
		"{\n"
		"	union ferry_sockaddr a;\n"
		"	struct ferry_iobuf *b = ferry_iobuf_new(64);\n"
		"	char s[64];\n"
		"	if (!b || ferry_sockaddr_parse(\"[2001:2::1]:9000\", &a) || ferry_iobuf_fill_be16(b, 9000))\n"
		"		return 2;\n"
		"	ferry_iobuf_flip_lo(b);\n"
		"	ferry_sockaddr_format(&a, s, sizeof(s));\n"
		"	printf(\"%s %zu\\n\", s, ferry_iobuf_length(b));\n"
		"	ferry_iobuf_free(b);\n"
		"	return 0;\n"
		"}\n";
	char path[256], pc[1024], san[64];
	FILE *f;

	sanitizer_flags(san, sizeof(san));
	snprintf(path, sizeof(path), "%s/consumer.c", tmp);
	f = fopen(path, "w");
	cr_assert_not_null(f, "expected to write %s", path);
	fputs(prog, f);
	fclose(f);
	snprintf(pc, sizeof(pc), "PKG_CONFIG_SYSROOT_DIR='%s' PKG_CONFIG_LIBDIR='%s%s/pkgconfig' pkg-config", root, root,
		 libdir);

	cr_assert_eq(sh("%s --cflags --libs libferry 2>&1", pc), 0, "expected pkg-config to know libferry: %s", out);
	cr_assert_not_null(strstr(out, root), "expected pkg-config's flags to point into %s: %s", root, out);

	cr_assert_eq(sh("cd '%s' && cc %s -Wall -Wextra -Werror consumer.c $(%s --cflags --libs libferry) "
			"-o consumer-shared 2>&1",
			tmp, san, pc),
		     0, "expected the consumer to build against libferry.so:\n%s", out);
	sh("readelf -d '%s/consumer-shared'", tmp);
	cr_assert_not_null(strstr(out, "Shared library: [libferry.so.0]"), "expected consumer-shared to need libferry.so.0:\n%s",
			   out);
	cr_assert_eq(sh("cd '%s' && LD_LIBRARY_PATH='%s%s' ldd ./consumer-shared | grep libferry", tmp, root, libdir), 0,
		     "expected ldd to find libferry");
	cr_assert_not_null(strstr(out, root), "expected the libferry.so.0 of %s to be loaded: %s", root, out);
	cr_assert_eq(sh("cd '%s' && LD_LIBRARY_PATH='%s%s' ./consumer-shared 2>&1", tmp, root, libdir), 0,
		     "expected consumer-shared to run: %s", out);
	cr_assert_str_eq(out, "[2001:2::1]:9000 2\n", "expected consumer-shared's line, got '%s'", out);

	cr_assert_eq(sh("cd '%s' && cc %s -Wall -Wextra -Werror consumer.c $(%s --cflags libferry) "
			"-Wl,-Bstatic $(%s --libs --static libferry) -Wl,-Bdynamic -o consumer-static 2>&1",
			tmp, san, pc, pc),
		     0, "expected the consumer to build against libferry.a:\n%s", out);
	sh("readelf -d '%s/consumer-static'", tmp);
	cr_assert_null(strstr(out, "libferry"), "expected consumer-static to need no libferry.so:\n%s", out);
	cr_assert_eq(sh("cd '%s' && ./consumer-static 2>&1", tmp), 0, "expected consumer-static to run: %s", out);
	cr_assert_str_eq(out, "[2001:2::1]:9000 2\n", "expected consumer-static's line, got '%s'", out);
}

static int make_install(const char *verb)
{
	return sh(MAKE " DESTDIR='%s/root' %s 2>&1", src, build, tmp, verb);
}

TestSuite(install, .init = setup_install, .fini = teardown);

Test(install, tree)
{
	static char want[8192], hdrs[1024];
	char root[256], p[512];
	struct stat st;

	scratch();
	cr_assert_eq(make_install("install"), 0, "expected make install to succeed:\n%s", tail(4000));
	snprintf(root, sizeof(root), "%s/root", tmp);
	headers(hdrs, sizeof(hdrs), "usr/local/include/ferry/");
	snprintf(want, sizeof(want),
		 "usr/local/sbin/ferryd\n"
		 "usr/local/sbin/ferryctl\n"
		 "usr/local/lib/libferry.so.%s\n"
		 "usr/local/lib/libferry.so.0\n"
		 "usr/local/lib/libferry.so\n"
		 "usr/local/lib/libferry.a\n"
		 "usr/local/lib/pkgconfig/libferry.pc\n"
		 "%s"
		 "usr/local/lib/systemd/system/ferryd.service\n"
		 "etc/ferry/ferryd.conf.example\n"
		 "usr/local/share/man/man3/libferry.3\n"
		 "usr/local/share/man/man5/ferryd.conf.5\n"
		 "usr/local/share/man/man8/ferryd.8\n"
		 "usr/local/share/man/man8/ferryctl.8\n",
		 FERRY_VERSION, hdrs);
	assert_tree(root, want);

	/* the soname chain, and modes */
	snprintf(p, sizeof(p), "%s/usr/local/lib/libferry.so", root);
	cr_assert_eq(sh("readlink '%s' '%s.0'", p, p), 0, "expected the .so symlinks");
	cr_assert_str_eq(out, "libferry.so.0\nlibferry.so." FERRY_VERSION "\n",
			 "expected libferry.so -> libferry.so.0 -> libferry.so." FERRY_VERSION ", got:\n%s", out);
	cr_assert_eq(sh("readelf -d '%s.0'", p), 0, "expected readelf to read the library");
	cr_assert_not_null(strstr(out, "Library soname: [libferry.so.0]"), "expected the soname libferry.so.0:\n%s", out);
	snprintf(p, sizeof(p), "%s/usr/local/sbin/ferryd", root);
	cr_assert(!stat(p, &st) && (st.st_mode & 0777) == 0755, "expected ferryd with mode 0755");
	snprintf(p, sizeof(p), "%s/usr/local/include/ferry/udp.h", root);
	cr_assert(!stat(p, &st) && (st.st_mode & 0777) == 0644, "expected the headers with mode 0644");

	/* the unit runs the installed ferryd */
	snprintf(p, sizeof(p), "%s/usr/local/lib/systemd/system/ferryd.service", root);
	assert_file_has(p, "ExecStart=/usr/local/sbin/ferryd --config /etc/ferry/ferryd.conf");
	assert_file_has(p, "ExecStartPre=/usr/local/sbin/ferryd --config /etc/ferry/ferryd.conf --check-config");
	cr_assert_neq(sh("grep -n '/usr/sbin/' '%s'", p), 0, "expected no /usr/sbin/ left in the unit:\n%s", out);

	/* the pkg-config file says where things are */
	snprintf(p, sizeof(p), "%s/usr/local/lib/pkgconfig/libferry.pc", root);
	assert_file_has(p, "prefix=/usr/local");
	assert_file_has(p, "libdir=/usr/local/lib");
	assert_file_has(p, "includedir=/usr/local/include");
	assert_file_has(p, "Version: " FERRY_VERSION);

	/* the pages and the example are the tree's */
	cr_assert_eq(sh("cmp man/ferryd.8 '%s/usr/local/share/man/man8/ferryd.8' && "
			"cmp daemon/ferryd.conf.example '%s/etc/ferry/ferryd.conf.example' 2>&1",
			root, root),
		     0, "expected the installed files to be the tree's: %s", out);
}

Test(install, consumer_links_and_runs)
{
	char root[256];

	scratch();
	cr_assert_eq(make_install("install"), 0, "expected make install to succeed:\n%s", tail(4000));
	snprintf(root, sizeof(root), "%s/root", tmp);
	assert_consumer_runs(root, "/usr/local/lib");
}

Test(install, uninstall_leaves_only_directories)
{
	char root[256], p[512];
	FILE *f;

	scratch();
	cr_assert_eq(make_install("install"), 0, "expected make install to succeed:\n%s", tail(4000));
	snprintf(root, sizeof(root), "%s/root", tmp);
	/* an administrator's configuration beside the example: not uninstall's to remove */
	snprintf(p, sizeof(p), "%s/etc/ferry/ferryd.conf", root);
	f = fopen(p, "w");
	cr_assert_not_null(f, "expected to write %s", p);
	fputs("[daemon]\n", f);
	fclose(f);

	cr_assert_eq(make_install("uninstall"), 0, "expected make uninstall to succeed:\n%s", tail(4000));
	cr_assert_str_eq(files_under(root), "etc/ferry/ferryd.conf\n",
			 "expected uninstall to leave only directories and the administrator's ferryd.conf, got:\n%s",
			 out);
	snprintf(p, sizeof(p), "%s/usr/local/include/ferry", root);
	cr_assert(!exists(p), "expected uninstall to remove %s, empty", p);

	/* once the administrator's file is gone, so is etc/ferry/; uninstall twice is fine */
	snprintf(p, sizeof(p), "%s/etc/ferry/ferryd.conf", root);
	cr_assert_eq(unlink(p), 0, "expected to remove %s", p);
	cr_assert_eq(make_install("uninstall"), 0, "expected a second make uninstall to succeed:\n%s", tail(4000));
	snprintf(p, sizeof(p), "%s/etc/ferry", root);
	cr_assert(!exists(p), "expected uninstall to remove an empty %s", p);
}

/* groff has nothing to say about a page (what lintian's check runs). */
static void assert_renders(const char *page)
{
	cr_assert_eq(sh("LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z '%s' 2>&1 >/dev/null",
			page),
		     0, "expected man to render %s", page);
	cr_assert_str_eq(out, "", "expected no warnings from man on %s:\n%s", page, out);
}

/* name with every '-' as roff's "\-": how the pages write flags, keys and names */
static const char *roff(const char *name)
{
	static char r[256];
	size_t n = 0;

	for (; *name && n + 3 < sizeof(r); name++) {
		if (*name == '-')
			r[n++] = '\\';
		r[n++] = *name;
	}
	r[n] = '\0';
	return r;
}

static void assert_page_has(const char *page, const char *text, const char *what)
{
	cr_assert_eq(sh("grep -qF -- '%s' '%s'", text, page), 0, "expected %s to name %s '%s'", page, what, text);
}

/* Each line of out, the output of cmd, as a list to walk with strtok_r: the caller's copy. */
static char *lines_of(char *copy, size_t len, const char *cmd, const char *arg)
{
	cr_assert_eq(sh(cmd, arg), 0, "expected '%s' to succeed: %s", cmd, out);
	snprintf(copy, len, "%s", out);
	return copy;
}

Test(install, man_pages)
{
	static char help[OUT_MAX], list[OUT_MAX];
	char ferryd[1100], ferryctl[1100], want[256], *save, *tok;
	const char *exits;

	if (sh("command -v man"))
		cr_skip_test("man is not installed (man-db)");
	assert_renders("man/ferryd.8");
	assert_renders("man/ferryctl.8");
	assert_renders("man/ferryd.conf.5");
	assert_renders("man/libferry.3");
	snprintf(ferryd, sizeof(ferryd), "%s/ferryd", build);
	snprintf(ferryctl, sizeof(ferryctl), "%s/ferryctl", build);

	/* ferryd(8): every option of --help, every exit status and signal it names */
	lines_of(list, sizeof(list), "'%s' --help | grep -oE -- '(^| )--[a-z][a-z-]*' | sed 's/^ *--//' | sort -u", ferryd);
	cr_assert_not_null(strstr(list, "interface\n"), "expected the options of ferryd --help:\n%s", list);
	for (tok = strtok_r(list, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save)) {
		snprintf(want, sizeof(want), "\\-\\-%s", roff(tok));
		assert_page_has("man/ferryd.8", want, "the option");
	}
	lines_of(help, sizeof(help), "'%s' --help", ferryd);
	for (const char *const *sig = (const char *const[]){"SIGUSR1", "SIGHUP", "SIGTERM", "SIGINT", NULL}; *sig; sig++) {
		cr_assert_not_null(strstr(help, *sig), "expected ferryd --help to name %s", *sig);
		assert_page_has("man/ferryd.8", *sig, "the signal");
	}
	exits = strstr(help, "Exit status:");
	cr_assert_not_null(exits, "expected ferryd --help to list its exit statuses");
	for (const char *const *st = (const char *const[]){"0", "1", "2", "3", "69", "78", NULL}; *st; st++) {
		snprintf(want, sizeof(want), " %s ", *st);
		cr_assert_not_null(strstr(exits, want), "expected ferryd --help to list exit status %s", *st);
		cr_assert_eq(sh("grep -qx -- '.B %s' man/ferryd.8", *st), 0, "expected ferryd.8 to explain exit status %s",
			     *st);
	}

	/* ferryd.conf(5): every key of both sections (--service is listen in the file) */
	lines_of(list, sizeof(list),
		 "'%s' --help | sed -n '/^The daemon/,/^  -v, --verbose/p' | grep -oE -- '(^| )--[a-z][a-z-]*' | "
		 "sed 's/^ *--//' | grep -vx -e client-zero-copy -e verbose -e service | sort -u; echo listen",
		 ferryd);
	cr_assert_not_null(strstr(list, "slot-size\n"), "expected the keys of ferryd --help:\n%s", list);
	for (tok = strtok_r(list, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save))
		assert_page_has("man/ferryd.conf.5", roff(tok), "the key");

	/* ferryctl(8): every option and command of its --help, every exit status */
	lines_of(list, sizeof(list), "'%s' --help | grep -oE -- '--[a-z][a-z-]*' | sort -u", ferryctl);
	cr_assert_not_null(strstr(list, "--json\n"), "expected the options of ferryctl --help:\n%s", list);
	for (tok = strtok_r(list, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save))
		assert_page_has("man/ferryctl.8", roff(tok), "the option");
	lines_of(list, sizeof(list), "'%s' --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }'",
		 ferryctl);
	cr_assert_not_null(strstr(list, "metrics\n"), "expected the commands of ferryctl --help:\n%s", list);
	for (tok = strtok_r(list, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save)) {
		snprintf(want, sizeof(want), ".B %s", tok);
		assert_page_has("man/ferryctl.8", want, "the command");
	}
	for (int st = 0; st <= 5; st++)
		cr_assert_eq(sh("grep -qx -- '.B %d' man/ferryctl.8", st), 0, "expected ferryctl.8 to explain exit status %d",
			     st);

	/* libferry(3): every function the library exports */
	lines_of(list, sizeof(list), "grep -oE 'ferry_[a-z0-9_]+;' '%s' | tr -d ';'", "libclient/src/libferry.map");
	cr_assert_not_null(strstr(list, "ferry_client_connect\n"), "expected the functions of libferry.map:\n%s", list);
	for (tok = strtok_r(list, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save))
		assert_page_has("man/libferry.3", tok, "the function");
}

/*
 * make deb: the three packages (and their -dbgsym), their files, what dpkg knows of them
 * (dependencies, the conffile, the symbols file), a consumer built against libferry0 and
 * libferry-dev unpacked in a scratch root, and lintian without errors. The one slow test: the
 * package's build compiles the library and ferryd again (about 30 s of CPU), lintian reads the
 * packages (about 10 s). Skipped under sanitizers: make deb empties the environment, so its
 * build would be the plain run's again.
 */
TestSuite(deb, .init = setup, .fini = teardown);

static void extract(const char *deb, const char *root)
{
	cr_assert_eq(sh("mkdir -p '%s' && dpkg-deb -x '%s' '%s' 2>&1", root, deb, root), 0, "expected to unpack %s: %s",
		     deb, out);
}

Test(deb, packages)
{
	static char want[8192], hdrs[1024], arch[64], ma[128];
	char deb[3][2048], root[256], each[256], p[2048];
	static const char *const pkgs[] = {"ferryd", "libferry0", "libferry-dev"};
	struct timespec t0, t1;
	const char *s = getenv("SANITIZE");

	if (sh("command -v dpkg-buildpackage && command -v dh && command -v lintian"))
		cr_skip_test("dpkg-dev, debhelper or lintian is not installed (make deps installs them)");
	if (s && *s)
		cr_skip_test("the package build ignores SANITIZE (make deb empties its environment): the plain run "
			     "tests it");
	scratch();
	cr_assert_eq(sh("dpkg --print-architecture"), 0, "expected dpkg's architecture");
	sscanf(out, "%63s", arch);
	cr_assert_eq(sh("dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null"), 0, "expected the multiarch triplet");
	sscanf(out, "%127s", ma);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(sh(MAKE " deb 2>&1", src, build), 0, "expected make deb to succeed:\n%s", tail(6000));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_log_info("make deb: %.0f s", (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);

	/* it built in a copy, and left nothing in the tree or beside it */
	snprintf(p, sizeof(p), "%s/deb/ferry-%s", build, FERRY_VERSION);
	cr_assert(!exists(p), "expected make deb to remove its copy of the sources, %s", p);
	cr_assert(!exists("debian/tmp") && !exists("debian/files") && !exists("debian/.debhelper") &&
			  !exists("debian/ferryd") && !exists("debian/debhelper-build-stamp"),
		  "expected make deb to leave the source tree's debian/ alone");
	snprintf(p, sizeof(p), "../ferry_%s_%s.changes", FERRY_VERSION, arch);
	cr_assert(!exists(p), "expected nothing written beside the source tree (%s)", p);

	for (int i = 0; i < 3; i++) {
		snprintf(deb[i], sizeof(deb[i]), "%s/deb/%s_%s_%s.deb", build, pkgs[i], FERRY_VERSION, arch);
		cr_assert(exists(deb[i]), "expected %s", deb[i]);
	}
	snprintf(p, sizeof(p), "%s/deb/ferryd-dbgsym_%s_%s.deb", build, FERRY_VERSION, arch);
	cr_assert(exists(p), "expected %s", p);

	/* ferryd */
	snprintf(each, sizeof(each), "%s/ferryd", tmp);
	extract(deb[0], each);
	assert_tree(each, "etc/ferry/ferryd.conf\n"
			  "lib/systemd/system/ferryd.service\n"
			  "usr/sbin/ferryctl\n"
			  "usr/sbin/ferryd\n"
			  "usr/share/doc/ferryd/README.md.gz\n"
			  "usr/share/doc/ferryd/architecture.md.gz\n"
			  "usr/share/doc/ferryd/changelog.gz\n"
			  "usr/share/doc/ferryd/configuration.md.gz\n"
			  "usr/share/doc/ferryd/copyright\n"
			  "usr/share/doc/ferryd/examples/ferryd.conf.example\n"
			  "usr/share/man/man5/ferryd.conf.5.gz\n"
			  "usr/share/man/man8/ferryctl.8.gz\n"
			  "usr/share/man/man8/ferryd.8.gz\n");
	snprintf(p, sizeof(p), "%s/lib/systemd/system/ferryd.service", each);
	assert_file_has(p, "ExecStart=/usr/sbin/ferryd --config /etc/ferry/ferryd.conf");
	cr_assert_eq(sh("cmp daemon/ferryd.conf.example '%s/etc/ferry/ferryd.conf' 2>&1", each), 0,
		     "expected /etc/ferry/ferryd.conf to be the example: %s", out);
	cr_assert_eq(sh("'%s/usr/sbin/ferryd' --help >/dev/null 2>&1 && '%s/usr/sbin/ferryctl' --help >/dev/null 2>&1",
			each, each),
		     0, "expected the packaged ferryd and ferryctl to run");
	cr_assert_eq(sh("dpkg-deb --ctrl-tarfile '%s' | tar -xOf - ./conffiles", deb[0]), 0, "expected a conffiles list");
	cr_assert_str_eq(out, "/etc/ferry/ferryd.conf\n", "expected /etc/ferry/ferryd.conf as the one conffile, got '%s'",
			 out);
	cr_assert_eq(sh("dpkg-deb -f '%s' Depends", deb[0]), 0, "expected ferryd's Depends");
	cr_assert(strstr(out, "libxdp1") && strstr(out, "libbpf1") && strstr(out, "libjansson4") && strstr(out, "libc6"),
		  "expected ferryd's Depends from its libraries (shlibs): %s", out);

	/* libferry0 */
	snprintf(each, sizeof(each), "%s/libferry0", tmp);
	extract(deb[1], each);
	snprintf(want, sizeof(want),
		 "usr/lib/%s/libferry.so.0\n"
		 "usr/lib/%s/libferry.so.%s\n"
		 "usr/share/doc/libferry0/changelog.gz\n"
		 "usr/share/doc/libferry0/copyright\n",
		 ma, ma, FERRY_VERSION);
	assert_tree(each, want);
	cr_assert_eq(sh("dpkg-deb --ctrl-tarfile '%s' | tar -xOf - ./symbols", deb[1]), 0, "expected a symbols file");
	cr_assert_not_null(strstr(out, "libferry.so.0 libferry0 #MINVER#"), "expected libferry0's symbols file:\n%s", out);
	cr_assert_not_null(strstr(out, " ferry_client_connect@FERRY_0.3 "), "expected versioned symbols:\n%s", out);

	/* libferry-dev */
	snprintf(each, sizeof(each), "%s/libferry-dev", tmp);
	extract(deb[2], each);
	headers(hdrs, sizeof(hdrs), "usr/include/ferry/");
	snprintf(want, sizeof(want),
		 "%s"
		 "usr/lib/%s/libferry.a\n"
		 "usr/lib/%s/libferry.so\n"
		 "usr/lib/%s/pkgconfig/libferry.pc\n"
		 "usr/share/doc/libferry-dev/changelog.gz\n"
		 "usr/share/doc/libferry-dev/clients.md.gz\n"
		 "usr/share/doc/libferry-dev/copyright\n"
		 "usr/share/doc/libferry-dev/loops.md.gz\n"
		 "usr/share/man/man3/libferry.3.gz\n",
		 hdrs, ma, ma, ma);
	assert_tree(each, want);
	snprintf(p, sizeof(p), "%s/usr/lib/%s/pkgconfig/libferry.pc", each, ma);
	assert_file_has(p, "prefix=/usr");
	snprintf(want, sizeof(want), "libdir=/usr/lib/%s", ma);
	assert_file_has(p, want);
	cr_assert_eq(sh("dpkg-deb -f '%s' Depends", deb[2]), 0, "expected libferry-dev's Depends");
	cr_assert_str_eq(out, "libferry0 (= " FERRY_VERSION ")\n", "expected libferry-dev to depend on its libferry0: %s",
			 out);

	/* both library packages in one root, as dpkg installs them: a consumer builds and runs */
	snprintf(root, sizeof(root), "%s/root", tmp);
	extract(deb[1], root);
	extract(deb[2], root);
	snprintf(p, sizeof(p), "/usr/lib/%s", ma);
	assert_consumer_runs(root, p);

	/* lintian: errors fail; what else it says is logged */
	cr_assert_eq(sh("lintian --fail-on error '%s/deb/ferry_%s_%s.changes' 2>/dev/null", build, FERRY_VERSION, arch), 0,
		     "expected lintian to find no error:\n%s", out);
	if (out[0])
		cr_log_info("lintian:\n%s", out);
}
