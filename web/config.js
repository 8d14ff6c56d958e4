// Deploy-time settings of the Opti-Quality web UI. Replace this one file when the static
// site is served from somewhere other than the API (S3 + CloudFront):
//   apiBase:  the API's base URL, e.g. "https://abc123.execute-api.eu-west-1.amazonaws.com";
//             empty = the same origin as this page (`opti serve`).
//   loginUrl: optional Cognito hosted-UI sign-in URL (implicit grant, redirect back to
//             /login); its #id_token is picked up by the login page.
window.OPTI_CONFIG = {
  apiBase: "",
  loginUrl: "",
};
