// Unlit transparent shader for THA4 frames, usable on a RawImage (uGUI) or a mesh (e.g. a Quad).
// The daemon sends either premultiplied or straight alpha (header `alpha`); Tha4FrameReceiver sets
// _SrcBlend (One for premultiplied, SrcAlpha for straight) and _Premultiplied to match.
// Built-in pipeline and URP (no lighting, single pass). HDRP: use an HDRP Unlit material instead.
Shader "Tha4Bridge/Unlit Transparent"
{
    Properties
    {
        _MainTex ("Frame", 2D) = "white" {}
        _Color ("Tint", Color) = (1, 1, 1, 1)
        [Enum(UnityEngine.Rendering.BlendMode)] _SrcBlend ("Source Blend (One = premultiplied, SrcAlpha = straight)", Float) = 1
        [ToggleUI] _Premultiplied ("Frame is premultiplied", Float) = 1
    }
    SubShader
    {
        Tags { "Queue" = "Transparent" "RenderType" = "Transparent" "IgnoreProjector" = "True" "PreviewType" = "Plane" }
        Cull Off
        ZWrite Off
        Lighting Off
        Blend [_SrcBlend] OneMinusSrcAlpha

        Pass
        {
            CGPROGRAM
            #pragma vertex vert
            #pragma fragment frag
            #include "UnityCG.cginc"

            sampler2D _MainTex;
            float4 _MainTex_ST;
            fixed4 _Color;
            float _Premultiplied;

            struct appdata
            {
                float4 vertex : POSITION;
                float2 uv : TEXCOORD0;
                fixed4 color : COLOR; // uGUI passes the Graphic's colour here
            };

            struct v2f
            {
                float4 pos : SV_POSITION;
                float2 uv : TEXCOORD0;
                fixed4 color : COLOR;
            };

            v2f vert(appdata v)
            {
                v2f o;
                o.pos = UnityObjectToClipPos(v.vertex);
                o.uv = TRANSFORM_TEX(v.uv, _MainTex);
                o.color = v.color * _Color;
                return o;
            }

            fixed4 frag(v2f i) : SV_Target
            {
                fixed4 c = tex2D(_MainTex, i.uv);
                c.rgb *= i.color.rgb;
                // Fading a premultiplied colour must scale RGB by the tint's alpha too.
                c.rgb *= lerp(1, i.color.a, _Premultiplied);
                c.a *= i.color.a;
                return c;
            }
            ENDCG
        }
    }
}
