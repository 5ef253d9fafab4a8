/*
 * strata native addon: the handful of Linux syscalls Node's fs module does not expose.
 *
 * Policy lives in TypeScript (src/sys/); every function here is a thin wrapper that
 * converts arguments, makes one syscall (retrying EINTR where the call is restartable)
 * and throws an Error shaped like the ones node:fs throws, so callers can branch on
 * `err.code` the same way for both.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <termios.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <dirent.h>
#include <ftw.h>
#include <unistd.h>

/*
 * <linux/fs.h> would give FICLONE, but with glibc 2.36 it drags in <linux/mount.h>, whose
 * MS_* definitions collide with <sys/mount.h>. The ioctl number is ABI, so spell it out.
 */
#ifndef FICLONE
#define FICLONE _IOW(0x94, 9, int)
#endif
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif
#ifndef RENAME_WHITEOUT
#define RENAME_WHITEOUT (1 << 2)
#endif

#define CHECK(call)                                                                    \
  do {                                                                                 \
    if ((call) != napi_ok) return NULL;                                                \
  } while (0)

/* ---------------------------------------------------------------- errors */

/*
 * libuv names errno 95 ENOTSUP (glibc says EOPNOTSUPP); Node's fs errors use libuv's
 * names, and callers compare against those.
 */
static const char *errno_code(int err) {
  if (err == EOPNOTSUPP) return "ENOTSUP";
  const char *name = strerrorname_np(err);
  return name ? name : "UNKNOWN";
}

static napi_value make_errno_error(napi_env env, int err, const char *syscall_name,
                                   const char *path, const char *dest) {
  const char *code = errno_code(err);
  char desc[256];
  snprintf(desc, sizeof desc, "%s", strerror(err));
  /* Node/libuv messages are all lower case ("no such file or directory"). */
  for (char *p = desc; *p; p++) {
    if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
  }
  size_t len = strlen(code) + strlen(desc) + strlen(syscall_name) + 16 +
               (path ? strlen(path) : 0) + (dest ? strlen(dest) : 0);
  char *msg = malloc(len);
  if (!msg) return NULL;
  if (path && dest) {
    snprintf(msg, len, "%s: %s, %s '%s' -> '%s'", code, desc, syscall_name, path, dest);
  } else if (path) {
    snprintf(msg, len, "%s: %s, %s '%s'", code, desc, syscall_name, path);
  } else {
    snprintf(msg, len, "%s: %s, %s", code, desc, syscall_name);
  }

  napi_value js_msg, js_err, v;
  napi_status st = napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &js_msg);
  free(msg);
  if (st != napi_ok) return NULL;
  CHECK(napi_create_error(env, NULL, js_msg, &js_err));
  CHECK(napi_create_int32(env, -err, &v));
  CHECK(napi_set_named_property(env, js_err, "errno", v));
  CHECK(napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &v));
  CHECK(napi_set_named_property(env, js_err, "code", v));
  CHECK(napi_create_string_utf8(env, syscall_name, NAPI_AUTO_LENGTH, &v));
  CHECK(napi_set_named_property(env, js_err, "syscall", v));
  if (path) {
    CHECK(napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &v));
    CHECK(napi_set_named_property(env, js_err, "path", v));
  }
  if (dest) {
    CHECK(napi_create_string_utf8(env, dest, NAPI_AUTO_LENGTH, &v));
    CHECK(napi_set_named_property(env, js_err, "dest", v));
  }
  return js_err;
}

static void throw_errno(napi_env env, int err, const char *syscall_name, const char *path,
                        const char *dest) {
  napi_value e = make_errno_error(env, err, syscall_name, path, dest);
  if (e) napi_throw(env, e);
}

static void throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
}

/* ---------------------------------------------------------------- arguments */

/* Returns a malloc'd copy of argv[i] (caller frees), or NULL with a pending exception. */
static char *arg_string(napi_env env, napi_value v, const char *what) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return NULL;
  if (t != napi_string) {
    char msg[128];
    snprintf(msg, sizeof msg, "The \"%s\" argument must be of type string", what);
    throw_type(env, msg);
    return NULL;
  }
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (!s) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  if (napi_get_value_string_utf8(env, v, s, len + 1, &len) != napi_ok) {
    free(s);
    return NULL;
  }
  /* A NUL inside the JS string would silently truncate the path the kernel sees. */
  if (strlen(s) != len) {
    free(s);
    char msg[128];
    snprintf(msg, sizeof msg, "The \"%s\" argument must not contain null bytes", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", msg);
    return NULL;
  }
  return s;
}

/* Like arg_string, but null/undefined yield NULL with *ok set and no exception. */
static char *arg_opt_string(napi_env env, napi_value v, const char *what, int *ok) {
  napi_valuetype t;
  *ok = 0;
  if (napi_typeof(env, v, &t) != napi_ok) return NULL;
  if (t == napi_null || t == napi_undefined) {
    *ok = 1;
    return NULL;
  }
  char *s = arg_string(env, v, what);
  if (s) *ok = 1;
  return s;
}

static int arg_int(napi_env env, napi_value v, const char *what, int64_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return 0;
  if (t != napi_number) {
    char msg[128];
    snprintf(msg, sizeof msg, "The \"%s\" argument must be of type number", what);
    throw_type(env, msg);
    return 0;
  }
  return napi_get_value_int64(env, v, out) == napi_ok;
}

static int arg_opt_int(napi_env env, napi_value v, const char *what, int64_t *out,
                       int64_t dflt) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return 0;
  if (t == napi_undefined || t == napi_null) {
    *out = dflt;
    return 1;
  }
  return arg_int(env, v, what, out);
}

static napi_value get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  napi_value undef;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_undefined(env, &undef));
  for (size_t i = argc; i < want; i++) argv[i] = undef;
  return undef;
}

/* ---------------------------------------------------------------- mknod */

static napi_value js_mknod(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  napi_value undef = get_args(env, info, 4, argv);
  if (!undef) return NULL;
  int64_t mode, major, minor;
  char *path = arg_string(env, argv[0], "path");
  if (!path) return NULL;
  if (!arg_int(env, argv[1], "mode", &mode) || !arg_int(env, argv[2], "major", &major) ||
      !arg_int(env, argv[3], "minor", &minor)) {
    free(path);
    return NULL;
  }
  if (mknod(path, (mode_t)mode, makedev((unsigned)major, (unsigned)minor)) != 0) {
    throw_errno(env, errno, "mknod", path, NULL);
  }
  free(path);
  return undef;
}

/* ---------------------------------------------------------------- xattrs */

static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  napi_value undef = get_args(env, info, 2, argv);
  if (!undef) return NULL;
  char *path = arg_string(env, argv[0], "path");
  if (!path) return NULL;
  char *name = arg_string(env, argv[1], "name");
  if (!name) {
    free(path);
    return NULL;
  }

  napi_value result = undef;
  char *buf = NULL;
  for (;;) {
    /* The value can grow between the size query and the read: ERANGE means ask again. */
    ssize_t size = lgetxattr(path, name, NULL, 0);
    if (size < 0) {
      if (errno != ENODATA) throw_errno(env, errno, "lgetxattr", path, NULL);
      break;
    }
    free(buf);
    buf = malloc(size > 0 ? (size_t)size : 1);
    if (!buf) {
      napi_throw_error(env, NULL, "out of memory");
      result = NULL;
      break;
    }
    ssize_t got = lgetxattr(path, name, buf, (size_t)size);
    if (got < 0) {
      if (errno == ERANGE) continue;
      if (errno != ENODATA) throw_errno(env, errno, "lgetxattr", path, NULL);
      break;
    }
    void *data;
    if (napi_create_buffer_copy(env, (size_t)got, buf, &data, &result) != napi_ok) result = NULL;
    break;
  }
  free(buf);
  free(path);
  free(name);
  return result;
}

static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  napi_value undef = get_args(env, info, 4, argv);
  if (!undef) return NULL;
  int64_t flags;
  bool is_buffer = false;
  void *data = NULL;
  size_t len = 0;
  char *path = arg_string(env, argv[0], "path");
  if (!path) return NULL;
  char *name = arg_string(env, argv[1], "name");
  if (!name) goto out;
  CHECK(napi_is_buffer(env, argv[2], &is_buffer));
  if (!is_buffer) {
    throw_type(env, "The \"value\" argument must be a Buffer");
    goto out;
  }
  if (napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok) goto out;
  if (!arg_opt_int(env, argv[3], "flags", &flags, 0)) goto out;
  if (lsetxattr(path, name, data, len, (int)flags) != 0) {
    throw_errno(env, errno, "lsetxattr", path, NULL);
  }
out:
  free(path);
  free(name);
  return undef;
}

static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  napi_value undef = get_args(env, info, 1, argv);
  if (!undef) return NULL;
  char *path = arg_string(env, argv[0], "path");
  if (!path) return NULL;

  napi_value result = NULL;
  char *buf = NULL;
  ssize_t got;
  for (;;) {
    ssize_t size = llistxattr(path, NULL, 0);
    if (size < 0) {
      throw_errno(env, errno, "llistxattr", path, NULL);
      goto out;
    }
    free(buf);
    buf = malloc(size > 0 ? (size_t)size : 1);
    if (!buf) {
      napi_throw_error(env, NULL, "out of memory");
      goto out;
    }
    got = llistxattr(path, buf, (size_t)size);
    if (got >= 0) break;
    if (errno != ERANGE) {
      throw_errno(env, errno, "llistxattr", path, NULL);
      goto out;
    }
  }

  if (napi_create_array(env, &result) != napi_ok) {
    result = NULL;
    goto out;
  }
  uint32_t idx = 0;
  for (ssize_t off = 0; off < got;) {
    size_t n = strnlen(buf + off, (size_t)(got - off));
    if (n > 0) {
      napi_value s;
      if (napi_create_string_utf8(env, buf + off, n, &s) != napi_ok ||
          napi_set_element(env, result, idx++, s) != napi_ok) {
        result = NULL;
        goto out;
      }
    }
    off += (ssize_t)n + 1;
  }
out:
  free(buf);
  free(path);
  return result;
}

static napi_value js_lremovexattr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  napi_value undef = get_args(env, info, 2, argv);
  if (!undef) return NULL;
  char *path = arg_string(env, argv[0], "path");
  if (!path) return NULL;
  char *name = arg_string(env, argv[1], "name");
  if (name && lremovexattr(path, name) != 0) {
    throw_errno(env, errno, "lremovexattr", path, NULL);
  }
  free(path);
  free(name);
  return undef;
}

/* ---------------------------------------------------------------- mount */

struct mount_req {
  const char *source, *target, *fstype, *data, *cwd;
  unsigned long flags;
  int err;
  const char *failed; /* which syscall failed */
};

/*
 * Runs on its own thread: unshare(CLONE_FS) gives this thread a private cwd, so the chdir
 * that lets overlay resolve relative lowerdir paths never moves the process's (libuv's
 * worker threads and the main thread keep theirs). The thread exits right after.
 */
static void *mount_in_dir(void *arg) {
  struct mount_req *r = arg;
  if (unshare(CLONE_FS) != 0) {
    r->err = errno;
    r->failed = "unshare";
  } else if (chdir(r->cwd) != 0) {
    r->err = errno;
    r->failed = "chdir";
  } else if (mount(r->source, r->target, r->fstype, r->flags, r->data) != 0) {
    r->err = errno;
    r->failed = "mount";
  }
  return NULL;
}

static napi_value js_mount(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  napi_value undef = get_args(env, info, 6, argv);
  if (!undef) return NULL;
  int ok;
  int64_t flags;
  char *source = NULL, *target = NULL, *fstype = NULL, *data = NULL, *cwd = NULL;

  source = arg_opt_string(env, argv[0], "source", &ok);
  if (!ok) goto out;
  target = arg_string(env, argv[1], "target");
  if (!target) goto out;
  fstype = arg_opt_string(env, argv[2], "fstype", &ok);
  if (!ok) goto out;
  if (!arg_int(env, argv[3], "flags", &flags)) goto out;
  data = arg_opt_string(env, argv[4], "data", &ok);
  if (!ok) goto out;
  cwd = arg_opt_string(env, argv[5], "cwd", &ok);
  if (!ok) goto out;

  struct mount_req r = {source, target, fstype, data, cwd, (unsigned long)flags, 0, "mount"};
  if (cwd) {
    pthread_t th;
    int rc = pthread_create(&th, NULL, mount_in_dir, &r);
    if (rc != 0) {
      r.err = rc;
      r.failed = "pthread_create";
    } else {
      pthread_join(th, NULL);
    }
  } else if (mount(source, target, fstype, r.flags, data) != 0) {
    r.err = errno;
  }
  if (r.err) {
    const char *p = strcmp(r.failed, "chdir") == 0 ? cwd : target;
    throw_errno(env, r.err, r.failed, p, NULL);
  }
out:
  free(source);
  free(target);
  free(fstype);
  free(data);
  free(cwd);
  return undef;
}

/* ---------------------------------------------------------------- network namespaces */

struct netns_req {
  const char *path;
  int err;
  const char *failed;
};

/*
 * Runs on its own thread: the thread moves into a fresh network namespace and bind-mounts
 * its /proc/thread-self/ns/net onto `path`, which keeps the namespace alive after the thread
 * exits (what `ip netns add` does, without a process). The process's namespace is untouched.
 */
static void *netns_thread(void *arg) {
  struct netns_req *r = arg;
  if (unshare(CLONE_NEWNET) != 0) {
    r->err = errno;
    r->failed = "unshare";
  } else if (mount("/proc/thread-self/ns/net", r->path, "none", MS_BIND, NULL) != 0) {
    r->err = errno;
    r->failed = "mount";
  }
  return NULL;
}

static napi_value js_netns_create(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  napi_value undef = get_args(env, info, 1, argv);
  if (!undef) return NULL;
  char *path = arg_string(env, argv[0], "path");
  if (!path) return NULL;
  struct netns_req r = {path, 0, "pthread_create"};
  pthread_t th;
  int rc = pthread_create(&th, NULL, netns_thread, &r);
  if (rc != 0) r.err = rc;
  else pthread_join(th, NULL);
  if (r.err) throw_errno(env, r.err, r.failed, path, NULL);
  free(path);
  return undef;
}

/* ---------------------------------------------------------------- terminals */

/*
 * openPty(): a new pseudo-terminal pair { master, slave } (both close-on-exec; a child gets
 * the slave through its stdio). runc given the slave as stdout treats it as its console.
 */
static napi_value js_open_pty(napi_env env, napi_callback_info info) {
  (void)info;
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) return throw_errno(env, errno, "posix_openpt", NULL, NULL), NULL;
  char name[128];
  if (grantpt(master) != 0 || unlockpt(master) != 0 || ptsname_r(master, name, sizeof name) != 0) {
    int err = errno;
    close(master);
    return throw_errno(env, err, "ptsname", NULL, NULL), NULL;
  }
  int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) {
    int err = errno;
    close(master);
    return throw_errno(env, err, "open", name, NULL), NULL;
  }
  napi_value out, m, sl;
  CHECK(napi_create_object(env, &out));
  CHECK(napi_create_int32(env, master, &m));
  CHECK(napi_create_int32(env, slave, &sl));
  CHECK(napi_set_named_property(env, out, "master", m));
  CHECK(napi_set_named_property(env, out, "slave", sl));
  return out;
}

/* setWinsize(fd, rows, cols): TIOCSWINSZ on a pty master. */
static napi_value js_set_winsize(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  napi_value undef = get_args(env, info, 3, argv);
  if (!undef) return NULL;
  int64_t fd, rows, cols;
  if (!arg_int(env, argv[0], "fd", &fd) || !arg_int(env, argv[1], "rows", &rows) || !arg_int(env, argv[2], "cols", &cols)) return NULL;
  struct winsize ws = {(unsigned short)rows, (unsigned short)cols, 0, 0};
  if (ioctl((int)fd, TIOCSWINSZ, &ws) != 0) throw_errno(env, errno, "ioctl", NULL, NULL);
  return undef;
}

static napi_value js_umount2(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  napi_value undef = get_args(env, info, 2, argv);
  if (!undef) return NULL;
  int64_t flags;
  char *target = arg_string(env, argv[0], "target");
  if (!target) return NULL;
  if (arg_opt_int(env, argv[1], "flags", &flags, 0) && umount2(target, (int)flags) != 0) {
    throw_errno(env, errno, "umount2", target, NULL);
  }
  free(target);
  return undef;
}

/* ---------------------------------------------------------------- flock */

static int flock_retry(int fd, int op) {
  int rc;
  do {
    rc = flock(fd, op);
  } while (rc != 0 && errno == EINTR);
  return rc == 0 ? 0 : errno;
}

static napi_value js_flock(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  napi_value undef = get_args(env, info, 2, argv);
  if (!undef) return NULL;
  int64_t fd, op;
  if (!arg_int(env, argv[0], "fd", &fd) || !arg_int(env, argv[1], "operation", &op)) return NULL;
  int err = flock_retry((int)fd, (int)op);
  if (err) throw_errno(env, err, "flock", NULL, NULL);
  return undef;
}

/*
 * A blocking flock can wait for as long as another process holds the lock. Parking that
 * wait on libuv's small shared thread pool would starve fs calls, including the close()
 * that lets this very process release the lock (four waiters are enough to deadlock). So
 * each wait gets its own short-lived thread, and a thread-safe function brings the result
 * back to the JS thread.
 */
struct flock_work {
  napi_threadsafe_function tsfn;
  napi_deferred deferred;
  int fd, op, err;
};

static void flock_settle(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)js_cb;
  (void)context;
  struct flock_work *w = data;
  /* env is NULL when the environment is being torn down: nobody is left to notify. */
  if (env) {
    napi_value v;
    if (w->err) {
      v = make_errno_error(env, w->err, "flock", NULL, NULL);
      if (v) napi_reject_deferred(env, w->deferred, v);
    } else {
      napi_get_undefined(env, &v);
      napi_resolve_deferred(env, w->deferred, v);
    }
  }
  free(w);
}

static void *flock_thread(void *arg) {
  struct flock_work *w = arg;
  /* w may be freed by flock_settle as soon as the call is queued; keep the handle. */
  napi_threadsafe_function tsfn = w->tsfn;
  w->err = flock_retry(w->fd, w->op);
  if (napi_call_threadsafe_function(tsfn, w, napi_tsfn_blocking) != napi_ok) free(w);
  napi_release_threadsafe_function(tsfn, napi_tsfn_release);
  return NULL;
}

static napi_value js_flock_async(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int64_t fd, op;
  if (!arg_int(env, argv[0], "fd", &fd) || !arg_int(env, argv[1], "operation", &op)) return NULL;
  struct flock_work *w = calloc(1, sizeof *w);
  if (!w) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  w->fd = (int)fd;
  w->op = (int)op;
  napi_value promise, name;
  if (napi_create_promise(env, &w->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "strata:flock", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, NULL, flock_settle,
                                      &w->tsfn) != napi_ok) {
    free(w);
    return NULL;
  }
  pthread_attr_t attr;
  pthread_t th;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  /* The thread only calls flock; a small stack keeps many concurrent waiters cheap. */
  pthread_attr_setstacksize(&attr, 64 * 1024);
  int rc = pthread_create(&th, &attr, flock_thread, w);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    napi_release_threadsafe_function(w->tsfn, napi_tsfn_abort);
    napi_value e = make_errno_error(env, rc, "pthread_create", NULL, NULL);
    if (e) napi_reject_deferred(env, w->deferred, e);
    free(w);
  }
  return promise;
}

/* ---------------------------------------------------------------- renameat2 */

static int do_renameat2(const char *oldp, const char *newp, unsigned flags) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 28))
  return renameat2(AT_FDCWD, oldp, AT_FDCWD, newp, flags);
#else
  return (int)syscall(SYS_renameat2, AT_FDCWD, oldp, AT_FDCWD, newp, flags);
#endif
}

static napi_value js_renameat2(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  napi_value undef = get_args(env, info, 3, argv);
  if (!undef) return NULL;
  int64_t flags;
  char *oldp = arg_string(env, argv[0], "oldPath");
  if (!oldp) return NULL;
  char *newp = arg_string(env, argv[1], "newPath");
  if (newp && arg_opt_int(env, argv[2], "flags", &flags, 0) &&
      do_renameat2(oldp, newp, (unsigned)flags) != 0) {
    throw_errno(env, errno, "renameat2", oldp, newp);
  }
  free(oldp);
  free(newp);
  return undef;
}

/* ---------------------------------------------------------------- ficlone */

static napi_value js_ficlone(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  napi_value undef = get_args(env, info, 2, argv);
  if (!undef) return NULL;
  int64_t dest, src;
  if (!arg_int(env, argv[0], "destFd", &dest) || !arg_int(env, argv[1], "srcFd", &src)) return NULL;
  if (ioctl((int)dest, FICLONE, (int)src) != 0) throw_errno(env, errno, "ioctl", NULL, NULL);
  return undef;
}

/* ---------------------------------------------------------------- statfs / syncfs */

static int set_num(napi_env env, napi_value obj, const char *key, double val) {
  napi_value v;
  return napi_create_double(env, val, &v) == napi_ok &&
         napi_set_named_property(env, obj, key, v) == napi_ok;
}

static napi_value js_statfs(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  char *path = arg_string(env, argv[0], "path");
  if (!path) return NULL;
  struct statfs s;
  int rc;
  do {
    rc = statfs(path, &s);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    throw_errno(env, errno, "statfs", path, NULL);
    free(path);
    return NULL;
  }
  free(path);
  napi_value obj;
  CHECK(napi_create_object(env, &obj));
  /* f_type is a signed word; magics like btrfs's 0x9123683e must come out positive. */
  if (!set_num(env, obj, "type", (double)(uint32_t)s.f_type) ||
      !set_num(env, obj, "bsize", (double)s.f_bsize) ||
      !set_num(env, obj, "blocks", (double)s.f_blocks) ||
      !set_num(env, obj, "bfree", (double)s.f_bfree) ||
      !set_num(env, obj, "bavail", (double)s.f_bavail) ||
      !set_num(env, obj, "files", (double)s.f_files) ||
      !set_num(env, obj, "ffree", (double)s.f_ffree) ||
      !set_num(env, obj, "namelen", (double)s.f_namelen) ||
      !set_num(env, obj, "flags", (double)s.f_flags)) {
    return NULL;
  }
  return obj;
}

static napi_value js_syncfs(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  napi_value undef = get_args(env, info, 1, argv);
  if (!undef) return NULL;
  int64_t fd;
  if (!arg_int(env, argv[0], "fd", &fd)) return NULL;
  if (syncfs((int)fd) != 0) throw_errno(env, errno, "syncfs", NULL, NULL);
  return undef;
}

/*
 * A syscall job on libuv's thread pool that settles a promise: resolved, or rejected with a
 * Node-style errno error naming `syscall` and `failed` (the path that could not be handled).
 */
struct pool_job {
  napi_async_work work;
  napi_deferred deferred;
  const char *syscall;
  int err;
  int fd;
  char *path; /* owned */
  char failed[4096];
};

static void pool_job_complete(napi_env env, napi_status status, void *data) {
  struct pool_job *w = data;
  napi_value v;
  if (status != napi_ok) {
    napi_get_undefined(env, &v);
    napi_reject_deferred(env, w->deferred, v);
  } else if (w->err) {
    v = make_errno_error(env, w->err, w->syscall, w->failed[0] ? w->failed : NULL, NULL);
    if (v) napi_reject_deferred(env, w->deferred, v);
  } else {
    napi_get_undefined(env, &v);
    napi_resolve_deferred(env, w->deferred, v);
  }
  napi_delete_async_work(env, w->work);
  free(w->path);
  free(w);
}

/* Queues `w` (taking ownership) and returns its promise; NULL with an exception pending. */
static napi_value pool_job_queue(napi_env env, struct pool_job *w, const char *name, napi_async_execute_callback execute) {
  napi_value promise, resource;
  if (napi_create_promise(env, &w->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource) != napi_ok ||
      napi_create_async_work(env, NULL, resource, execute, pool_job_complete, w, &w->work) != napi_ok ||
      napi_queue_async_work(env, w->work) != napi_ok) {
    free(w->path);
    free(w);
    return NULL;
  }
  return promise;
}

static struct pool_job *pool_job_new(napi_env env, const char *syscall) {
  struct pool_job *w = calloc(1, sizeof *w);
  if (!w) napi_throw_error(env, NULL, "out of memory");
  else w->syscall = syscall;
  return w;
}

/*
 * syncfs on the thread pool: a load starts flushing each finished layer while it unpacks the
 * next one, so the final (awaited) syncfs finds little left to write.
 */
static void syncfs_execute(napi_env env, void *data) {
  (void)env;
  struct pool_job *w = data;
  w->err = syncfs(w->fd) == 0 ? 0 : errno;
}

static napi_value js_syncfs_async(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int64_t fd;
  if (!arg_int(env, argv[0], "fd", &fd)) return NULL;
  struct pool_job *w = pool_job_new(env, "syncfs");
  if (!w) return NULL;
  w->fd = (int)fd;
  return pool_job_queue(env, w, "strata:syncfs", syncfs_execute);
}

/*
 * rm -rf on the thread pool. Node's recursive fs.rm walks the tree in JavaScript with a
 * thread-pool round trip per entry (~3 ms for a container's 20-entry snapshot here); this is
 * one job. FTW_PHYS: symlinks are removed, never followed. FTW_MOUNT: the walk never enters
 * another filesystem, so a forgotten mount below fails the removal (EBUSY/ENOTEMPTY) instead
 * of emptying what is mounted there. A missing path is success, as with `rm -f`.
 */
static __thread struct pool_job *remove_tree_job;

static int remove_tree_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)ftw;
  int rc = (flag == FTW_DP || flag == FTW_DNR) ? rmdir(p) : unlink(p);
  if (rc != 0 && errno != ENOENT) {
    remove_tree_job->err = errno;
    snprintf(remove_tree_job->failed, sizeof remove_tree_job->failed, "%s", p);
    return 1;
  }
  return 0;
}

static void remove_tree_execute(napi_env env, void *data) {
  (void)env;
  struct pool_job *w = data;
  /* nftw's callback takes no context; each pool thread runs one job at a time. */
  remove_tree_job = w;
  int rc = nftw(w->path, remove_tree_entry, 64, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
  if (rc == -1 && !w->err && errno != ENOENT) {
    w->err = errno;
    snprintf(w->failed, sizeof w->failed, "%s", w->path);
  }
  remove_tree_job = NULL;
}

static napi_value js_remove_tree(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  char *path = arg_string(env, argv[0], "path");
  if (!path) return NULL;
  struct pool_job *w = pool_job_new(env, "rm");
  if (!w) {
    free(path);
    return NULL;
  }
  w->path = path;
  return pool_job_queue(env, w, "strata:removeTree", remove_tree_execute);
}

/*
 * readahead(2): starts reading a file into the page cache and returns at once. Rebuilding a
 * layer reads thousands of small files in order; announcing the next ones lets the disk
 * work on many of them while the current one is hashed and written.
 */
static napi_value js_readahead(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  napi_value undef = get_args(env, info, 3, argv);
  if (!undef) return NULL;
  int64_t fd, offset, count;
  if (!arg_int(env, argv[0], "fd", &fd) || !arg_int(env, argv[1], "offset", &offset) ||
      !arg_int(env, argv[2], "count", &count))
    return NULL;
  if (readahead((int)fd, (off64_t)offset, (size_t)count) != 0) throw_errno(env, errno, "readahead", NULL, NULL);
  return undef;
}

/* ---------------------------------------------------------------- readdir types */

/*
 * Node's readdir({withFileTypes}) quietly lstat()s entries whose d_type is DT_UNKNOWN, so
 * JS cannot see whether the filesystem fills in d_type. Overlay (and Docker's check for
 * it) needs to know, hence the raw view: [[name, d_type], ...] without "." and "..".
 */
static napi_value js_readdir_types(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  char *path = arg_string(env, argv[0], "path");
  if (!path) return NULL;
  napi_value result = NULL;
  DIR *dir = opendir(path);
  if (!dir) {
    throw_errno(env, errno, "opendir", path, NULL);
    free(path);
    return NULL;
  }
  if (napi_create_array(env, &result) != napi_ok) goto fail;
  uint32_t idx = 0;
  for (;;) {
    errno = 0;
    struct dirent *de = readdir(dir);
    if (!de) {
      if (errno) {
        throw_errno(env, errno, "readdir", path, NULL);
        goto fail;
      }
      break;
    }
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    napi_value pair, name, type;
    if (napi_create_array_with_length(env, 2, &pair) != napi_ok ||
        napi_create_string_utf8(env, de->d_name, NAPI_AUTO_LENGTH, &name) != napi_ok ||
        napi_create_uint32(env, de->d_type, &type) != napi_ok ||
        napi_set_element(env, pair, 0, name) != napi_ok ||
        napi_set_element(env, pair, 1, type) != napi_ok ||
        napi_set_element(env, result, idx++, pair) != napi_ok) {
      goto fail;
    }
  }
  closedir(dir);
  free(path);
  return result;
fail:
  closedir(dir);
  free(path);
  return NULL;
}

/* ---------------------------------------------------------------- module */

static int add_const(napi_env env, napi_value obj, const char *name, double val) {
  return set_num(env, obj, name, val);
}

static int add_fn(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  return napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn) == napi_ok &&
         napi_set_named_property(env, exports, name, fn) == napi_ok;
}

static napi_value init(napi_env env, napi_value exports) {
  if (!add_fn(env, exports, "mknod", js_mknod) || !add_fn(env, exports, "lgetxattr", js_lgetxattr) ||
      !add_fn(env, exports, "lsetxattr", js_lsetxattr) ||
      !add_fn(env, exports, "llistxattr", js_llistxattr) ||
      !add_fn(env, exports, "lremovexattr", js_lremovexattr) ||
      !add_fn(env, exports, "mount", js_mount) || !add_fn(env, exports, "umount2", js_umount2) ||
      !add_fn(env, exports, "netnsCreate", js_netns_create) ||
      !add_fn(env, exports, "setWinsize", js_set_winsize) ||
      !add_fn(env, exports, "openPty", js_open_pty) ||
      !add_fn(env, exports, "flock", js_flock) ||
      !add_fn(env, exports, "flockAsync", js_flock_async) ||
      !add_fn(env, exports, "renameat2", js_renameat2) ||
      !add_fn(env, exports, "ficlone", js_ficlone) || !add_fn(env, exports, "statfs", js_statfs) ||
      !add_fn(env, exports, "syncfs", js_syncfs) ||
      !add_fn(env, exports, "readahead", js_readahead) ||
      !add_fn(env, exports, "syncfsAsync", js_syncfs_async) ||
      !add_fn(env, exports, "removeTree", js_remove_tree) ||
      !add_fn(env, exports, "readdirTypes", js_readdir_types)) {
    return NULL;
  }

  napi_value c;
  CHECK(napi_create_object(env, &c));
  if (!add_const(env, c, "MS_RDONLY", MS_RDONLY) || !add_const(env, c, "MS_NOSUID", MS_NOSUID) ||
      !add_const(env, c, "MS_NODEV", MS_NODEV) || !add_const(env, c, "MS_NOEXEC", MS_NOEXEC) ||
      !add_const(env, c, "MS_SYNCHRONOUS", MS_SYNCHRONOUS) ||
      !add_const(env, c, "MS_REMOUNT", MS_REMOUNT) ||
      !add_const(env, c, "MS_MANDLOCK", MS_MANDLOCK) ||
      !add_const(env, c, "MS_DIRSYNC", MS_DIRSYNC) ||
      !add_const(env, c, "MS_NOATIME", MS_NOATIME) ||
      !add_const(env, c, "MS_NODIRATIME", MS_NODIRATIME) ||
      !add_const(env, c, "MS_BIND", MS_BIND) || !add_const(env, c, "MS_MOVE", MS_MOVE) ||
      !add_const(env, c, "MS_REC", MS_REC) || !add_const(env, c, "MS_SILENT", MS_SILENT) ||
      !add_const(env, c, "MS_UNBINDABLE", MS_UNBINDABLE) ||
      !add_const(env, c, "MS_PRIVATE", MS_PRIVATE) || !add_const(env, c, "MS_SLAVE", MS_SLAVE) ||
      !add_const(env, c, "MS_SHARED", MS_SHARED) ||
      !add_const(env, c, "MS_RELATIME", MS_RELATIME) ||
      !add_const(env, c, "MS_STRICTATIME", MS_STRICTATIME) ||
      !add_const(env, c, "MNT_FORCE", MNT_FORCE) || !add_const(env, c, "MNT_DETACH", MNT_DETACH) ||
      !add_const(env, c, "LOCK_SH", LOCK_SH) || !add_const(env, c, "LOCK_EX", LOCK_EX) ||
      !add_const(env, c, "LOCK_NB", LOCK_NB) || !add_const(env, c, "LOCK_UN", LOCK_UN) ||
      !add_const(env, c, "RENAME_NOREPLACE", RENAME_NOREPLACE) ||
      !add_const(env, c, "RENAME_EXCHANGE", RENAME_EXCHANGE) ||
      !add_const(env, c, "RENAME_WHITEOUT", RENAME_WHITEOUT) ||
      !add_const(env, c, "XATTR_CREATE", XATTR_CREATE) ||
      !add_const(env, c, "XATTR_REPLACE", XATTR_REPLACE) ||
      !add_const(env, c, "S_IFCHR", S_IFCHR) || !add_const(env, c, "S_IFBLK", S_IFBLK) ||
      !add_const(env, c, "S_IFIFO", S_IFIFO) || !add_const(env, c, "DT_UNKNOWN", DT_UNKNOWN) ||
      !add_const(env, c, "DT_REG", DT_REG) || !add_const(env, c, "DT_DIR", DT_DIR) ||
      !add_const(env, c, "DT_LNK", DT_LNK) || !add_const(env, c, "DT_CHR", DT_CHR)) {
    return NULL;
  }
  CHECK(napi_object_freeze(env, c));
  CHECK(napi_set_named_property(env, exports, "constants", c));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
