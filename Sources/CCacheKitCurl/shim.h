#ifndef CACHEKIT_CURL_SHIM_H
#define CACHEKIT_CURL_SHIM_H

// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: these wrappers fix the types.
#include <curl/curl.h>

typedef size_t (*cachekit_curl_data_callback)(char *data, size_t size, size_t count, void *context);
typedef int (*cachekit_curl_progress_callback)(void *context, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow);

static inline CURLcode cachekit_curl_set_long(CURL *curl, CURLoption option, long value) {
    return curl_easy_setopt(curl, option, value);
}

static inline CURLcode cachekit_curl_set_string(CURL *curl, CURLoption option, const char *value) {
    return curl_easy_setopt(curl, option, value);
}

static inline CURLcode cachekit_curl_set_pointer(CURL *curl, CURLoption option, void *value) {
    return curl_easy_setopt(curl, option, value);
}

static inline CURLcode cachekit_curl_set_headers(CURL *curl, struct curl_slist *headers) {
    return curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
}

static inline CURLcode cachekit_curl_set_body(CURL *curl, const char *body, long length) {
    CURLcode code = curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, length);
    if (code != CURLE_OK) { return code; }
    return curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
}

static inline CURLcode cachekit_curl_set_write(CURL *curl, cachekit_curl_data_callback callback, void *context) {
    CURLcode code = curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, callback);
    if (code != CURLE_OK) { return code; }
    return curl_easy_setopt(curl, CURLOPT_WRITEDATA, context);
}

static inline CURLcode cachekit_curl_set_header_callback(CURL *curl, cachekit_curl_data_callback callback, void *context) {
    CURLcode code = curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, callback);
    if (code != CURLE_OK) { return code; }
    return curl_easy_setopt(curl, CURLOPT_HEADERDATA, context);
}

static inline CURLcode cachekit_curl_set_progress(CURL *curl, cachekit_curl_progress_callback callback, void *context) {
    CURLcode code = curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, callback);
    if (code != CURLE_OK) { return code; }
    code = curl_easy_setopt(curl, CURLOPT_XFERINFODATA, context);
    if (code != CURLE_OK) { return code; }
    return curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
}

static inline long cachekit_curl_response_code(CURL *curl) {
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    return code;
}

#endif
