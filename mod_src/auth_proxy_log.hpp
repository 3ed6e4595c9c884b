/**
 * @file auth_proxy_log.hpp
 * Our own message numbers, in the style of httpd's APLOGNO: every log line
 * of the module starts with "APXnnnnn: ", so operators can grep for it.
 */
#pragma once

#define APXLOGNO(n) "APX" #n ": "
