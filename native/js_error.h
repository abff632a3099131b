// Turning C++ failures into JavaScript errors, for the binding files and the
// promise worker: the only other places that know N-API.
#ifndef PAGEWALK_JS_ERROR_H
#define PAGEWALK_JS_ERROR_H

#include <napi.h>
#include <uv.h>

#include <new>
#include <stdexcept>
#include <string>

#include "system_error.h"

namespace pagewalk {

// Node's fs style: "ENOENT: no such file or directory, open '/proc/1/pagemap'"
// with errno negative, as libuv reports it.
inline Napi::Error toJsError(Napi::Env env, const SystemError& e) {
  const int uvErr = -e.errnum();
  const std::string code = uv_err_name(uvErr);
  const std::string reason = e.detail().empty() ? uv_strerror(uvErr) : e.detail();
  std::string message = code + ": " + reason + ", " + e.syscall();
  if (!e.path().empty()) message += " '" + e.path() + "'";
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("errno", Napi::Number::New(env, uvErr));
  err.Set("code", Napi::String::New(env, code));
  err.Set("syscall", Napi::String::New(env, e.syscall()));
  if (!e.path().empty()) err.Set("path", Napi::String::New(env, e.path()));
  return err;
}

// Runs fn, turning C++ exceptions into JavaScript ones so the host never
// sees a C++ exception escape.
template <typename Fn>
auto guarded(Napi::Env env, Fn fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const SystemError& e) {
    throw toJsError(env, e);
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(env, "out of memory");
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

}  // namespace pagewalk

#endif  // PAGEWALK_JS_ERROR_H
