#include "auth_proxy/scheme/negotiate/service_keys.hpp"

#include "krb5_handles.hpp"

#include <algorithm>
#include <atomic>
#include <unistd.h>

namespace auth_proxy {

struct ServiceKeys::Handles {
    explicit Handles(krb5::Context owned) : context(std::move(owned)), memory(context.get()) {}
    krb5::Context context;
    krb5::Keytab memory; // declared after the context: closed before it
};

namespace {

/** A MEMORY: keytab name no other load in this process (or its parent) has used. */
std::string unique_memory_name()
{
    static std::atomic<unsigned> loads{0};
    return "MEMORY:auth_proxy_" + std::to_string(::getpid()) + "_" + std::to_string(++loads);
}

/** True if @p principal is a service of the form HTTP/<host>. */
bool is_http_service(krb5_const_principal principal) noexcept
{
    if (principal->length < 2) {
        return false;
    }
    const krb5_data &service = principal->data[0];
    return std::string_view(service.data, service.length) == "HTTP";
}

/** Frees a keytab entry (and wipes its key) when the loop step that read it ends. */
class EntryGuard {
public:
    EntryGuard(krb5_context context, krb5_keytab_entry &entry) noexcept : context_(context), entry_(entry) {}
    ~EntryGuard() { krb5_free_keytab_entry_contents(context_, &entry_); }
    EntryGuard(const EntryGuard &) = delete;
    EntryGuard &operator=(const EntryGuard &) = delete;

private:
    krb5_context context_;
    krb5_keytab_entry &entry_;
};

} // namespace

std::unique_ptr<ServiceKeys> ServiceKeys::load(const std::string &path, std::string &error) noexcept
{
    try {
        krb5::Context owned = krb5::new_context(error);
        if (!owned) {
            return nullptr;
        }
        auto handles = std::make_unique<Handles>(std::move(owned));
        krb5_context context = handles->context.get();
        const auto fail = [&](const std::string &why) {
            error = "keytab " + path + ": " + why;
            return nullptr;
        };

        // "FILE:" always: a path is a file, never a name of another keytab type.
        krb5::Keytab file(context);
        krb5_error_code code = krb5_kt_resolve(context, ("FILE:" + path).c_str(), file.out());
        if (code != 0) {
            return fail(krb5::error_text(context, code));
        }
        std::unique_ptr<ServiceKeys> keys(new ServiceKeys());
        keys->path_ = path;
        keys->name_ = unique_memory_name();
        code = krb5_kt_resolve(context, keys->name_.c_str(), handles->memory.out());
        if (code != 0) {
            return fail("cannot make the in-memory copy: " + krb5::error_text(context, code));
        }

        krb5_kt_cursor cursor = nullptr;
        code = krb5_kt_start_seq_get(context, file.get(), &cursor);
        if (code != 0) {
            return fail(krb5::error_text(context, code));
        }
        bool has_http = false;
        krb5_keytab_entry entry;
        while ((code = krb5_kt_next_entry(context, file.get(), &entry, &cursor)) == 0) {
            const EntryGuard guard(context, entry);
            code = krb5_kt_add_entry(context, handles->memory.get(), &entry);
            if (code != 0) {
                break;
            }
            ++keys->keys_;
            has_http = has_http || is_http_service(entry.principal);
            char *unparsed = nullptr;
            if ((code = krb5_unparse_name(context, entry.principal, &unparsed)) != 0) {
                break;
            }
            const std::string name = unparsed;
            krb5_free_unparsed_name(context, unparsed);
            auto &names = keys->principals_;
            if (std::find(names.begin(), names.end(), name) == names.end()) {
                names.push_back(name);
            }
        }
        krb5_kt_end_seq_get(context, file.get(), &cursor);
        if (code != KRB5_KT_END) {
            return fail(krb5::error_text(context, code));
        }
        if (keys->keys_ == 0) {
            return fail("holds no key");
        }
        if (!has_http) {
            return fail("holds no key of an HTTP/<host> service (it holds " + keys->summary() + ")");
        }
        keys->handles_ = std::move(handles);
        return keys;
    }
    catch (const std::exception &e) {
        error = "keytab " + path + ": " + e.what();
    }
    catch (...) {
        error = "keytab " + path + ": unknown error";
    }
    return nullptr;
}

ServiceKeys::~ServiceKeys() = default;

std::string ServiceKeys::summary() const
{
    std::string text;
    for (const std::string &principal : principals_) {
        text += (text.empty() ? "" : ", ") + principal;
    }
    return text + " (" + std::to_string(keys_) + (keys_ == 1 ? " key)" : " keys)");
}

} // namespace auth_proxy
